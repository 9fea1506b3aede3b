"""The render cache on disk (`.newsletter/cache/`): a hit is the same text a fresh render gives, an
edit is never answered from it, a damaged or unwritable cache only costs time, and no member's data
is ever written to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.compose import analysis, inline
from newsletter.compose.inline import inline_css, inline_shared
from newsletter.compose.render_cache import InlineCache, folder_for
from newsletter.compose.templates import make_environment
from newsletter.project import load_project
from newsletter.reports import check_all
from newsletter.settings import resolve
from tests.conftest import BEFORE_FIRST, CliRunner
from tests.smtpd import Server
from tests.test_render_cache import NOW, edit, html_of, prepared

ROOT = Path(__file__).resolve().parent.parent


def forget_in_memory() -> None:
    """What this process remembers of earlier renders dropped, as a new process starts."""
    inline_css.cache_clear()
    inline_shared.cache_clear()
    make_environment.cache_clear()
    analysis._PARSED.clear()
    inline._STYLE_RULES.clear()
    inline._PAIRS.clear()
    from newsletter.compose import context, render_cache

    render_cache.answer_store.cache_clear()
    render_cache.style_store.cache_clear()
    context.article_view.cache_clear()


def cache_files(group: Path) -> list[Path]:
    return sorted(p for p in folder_for(group / ".newsletter").rglob("*") if p.is_file())


def check_lines(group: Path) -> list[str]:
    return check_all(resolve(group, environ={}), now=NOW)


def check_in_a_process(group: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_"))}
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "--dir", str(group), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_hit_is_the_text_a_fresh_transform_gives(group: Path, tmp_path: Path) -> None:
    prep, member = prepared(group)
    fresh = html_of(prep, member)
    entries = [p for p in cache_files(group) if p.parent.name == "inline"]
    assert entries, "the shared render was not kept"
    forget_in_memory()
    assert html_of(prepared(group)[0], member) == fresh  # from the cache, in a new state

    html = "<html><head><style>p {color: red} @media (max-width: 9px) {p {color: blue}}</style></head>"
    html += "<body><p>NLSLOT000QZX &amp; é</p></body></html>"
    cache = InlineCache(tmp_path / "inline", "options")
    first = cache.inlined(html, inline_css.__wrapped__)

    def must_not_run(_: str) -> str:
        raise AssertionError("a hit transformed again")

    assert InlineCache(tmp_path / "inline", "options").inlined(html, must_not_run) == first
    assert first == inline_css.__wrapped__(html)
    # Other options are another key: computed, not read.
    assert InlineCache(tmp_path / "inline", "other").inlined(html, lambda h: "other") == "other"


def test_check_says_the_same_cold_warm_and_without_a_cache(group: Path) -> None:
    cold = check_lines(group)
    assert cache_files(group)
    forget_in_memory()
    assert check_lines(group) == cold
    forget_in_memory()
    for path in cache_files(group):
        path.unlink()
    assert check_lines(group) == cold
    assert cold[-1].startswith("All good") and "templates: 14 upcoming mails render" in cold


def test_a_warm_check_loads_no_premailer_icalendar_markdown_yaml_or_email_validator(
    group: Path,
) -> None:
    check_in_a_process(group, "check")
    script = (
        "import sys\n"
        "from newsletter.cli.main import main\n"
        f"code = main(['--dir', {str(group)!r}, 'check'])\n"
        "assert code == 0, code\n"
        "heavy = ('premailer', 'cssutils', 'lxml', 'icalendar', 'markdown')\n"
        "heavy += ('email_validator', 'ruamel.yaml')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_"))}
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, env=env, capture_output=True)


def test_edits_across_runs_are_never_answered_from_the_cache(group: Path) -> None:
    preview = group / ".newsletter" / "preview"

    def html_in_a_process() -> str:
        check_in_a_process(group, "preview", "--at", BEFORE_FIRST)
        [page] = preview.iterdir()
        return page.read_text(encoding="utf-8")

    first = html_in_a_process()
    assert html_in_a_process() == first
    with (group / "templates" / "style.css").open("a", encoding="utf-8") as fh:
        fh.write("\np { letter-spacing: 7px }\n")
    styled = html_in_a_process()
    assert "letter-spacing:7px" in styled and "letter-spacing:7px" not in first
    edit(
        group / "templates" / "reminder.html",
        '<p class="greeting">{{ greeting }}</p>\n',
        '<p class="greeting">{{ greeting }}</p>\n<p>Edited between runs</p>\n',
    )
    assert "Edited between runs" in html_in_a_process()
    edit(  # the article's excerpt, kept in the cache too
        group / "content" / "articles" / "second-opinion.md",
        "Cancer can be complicated to diagnose and manage.",
        "Cancer can be hard to diagnose and manage.",
    )
    assert "Cancer can be hard to diagnose" in html_in_a_process()


def test_a_damaged_cache_is_computed_anew(group: Path) -> None:
    prep, member = prepared(group)
    fresh, lines = html_of(prep, member), check_lines(group)
    files = cache_files(group)
    assert {p.parent.name.split("-")[0] for p in files} >= {"inline", "jinja", "cache"}
    for n, path in enumerate(files):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if n % 2 else data[:-40] + b"x" * 40)
    forget_in_memory()
    assert html_of(prepared(group)[0], member) == fresh
    forget_in_memory()
    assert check_lines(group) == lines
    forget_in_memory()
    for path in cache_files(group):  # a file of garbage of the same name
        path.write_bytes(os.urandom(64))
    assert check_in_a_process(group, "check").splitlines() == lines
    forget_in_memory()
    assert html_of(prepared(group)[0], member) == fresh


def test_a_cache_that_cannot_be_written_only_costs_time(group: Path) -> None:
    lines = check_lines(group)
    forget_in_memory()
    folder = folder_for(group / ".newsletter")
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    folder.rmdir()
    folder.write_text("not a folder")  # no entry can be read or written under it
    assert check_lines(group) == lines
    forget_in_memory()
    assert check_in_a_process(group, "check").splitlines() == lines
    assert folder.read_text() == "not a folder"


def test_the_cache_is_private(group: Path) -> None:
    check_lines(group)
    folder = folder_for(group / ".newsletter")
    assert folder.stat().st_mode & 0o777 == 0o700
    for path in folder.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    assert not [p for p in folder.rglob("*.tmp")]


PERSONAL = (
    '{% if member.name %}<p class="lead">Welcome back, {{ member.name|upper }}!</p>'
    '{% else %}<p class="lead">Welcome, friend!</p>{% endif %}\n'
)


def test_no_member_data_is_written_to_the_cache(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One template personalised (a member value in logic and a filter: variants), the text one
    # rendered per member in full ({% set %}…{% endset %} cannot be traced).
    edit(group / "templates" / "reminder.html", '<p class="greeting">{{ greeting }}</p>\n', PERSONAL)
    monkeypatch.setenv("SMTP_URL", smtp.url)
    monkeypatch.setenv("NEWSLETTER_PUBLIC_URL", "https://news.example.org")
    code, _, err = run(group, "send", "--at", BEFORE_FIRST)  # one render per variant
    assert code == 0, err
    edit(
        group / "templates" / "reminder.txt",
        "{{ greeting }}\n",
        "{{ greeting }}\n{% set who %}{{ member.name }}{% endset %}"
        "Signed up as {{ who }}, {{ member.email }}\n",
    )
    code, _, err = run(group, "send", "--at", "2026-12-07T09:05")  # every member rendered in full
    assert code == 0, err
    project = load_project(resolve(group, environ={}))
    members = list(project.members())
    assert len(smtp.messages) == 2 * len(members) >= 10
    bodies = []
    for received in smtp.messages:
        text, html = received.message.get_body(("plain",)), received.message.get_body(("html",))
        assert text is not None and html is not None
        bodies.append(" ".join(f"{text.get_content()} {html.get_content()}".split()))
    assert any("Signed up as Linda Harper" in body for body in bodies)
    assert any("Welcome back, ZOË MARTIN!" in body for body in bodies)
    code, _, err = run(group, "check")
    assert code == 0, err
    files = cache_files(group)
    assert any(p.name.endswith(".cache") for p in files)  # the compiled templates, at least
    secrets = set()
    for member in members:
        secrets |= {member.email, member.email.lower(), member.email.split("@")[0]}
        secrets |= {part for part in member.name.split() if len(part) > 2}
        secrets |= {member.name.upper()} if member.name else set()
    secrets |= {s.encode("utf-8").decode("latin-1") for s in set(secrets)}  # as UTF-8 bytes read wrongly
    for path in files:
        text = path.read_bytes().decode("utf-8", "replace")
        found = sorted(s for s in secrets if s and s in text)
        assert not found, f"{path.name} holds {found}"
