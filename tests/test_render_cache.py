"""What is remembered between renders in one process (parsed templates, their analysis, premailer's
inlining, the article excerpt, the calendar file) is keyed by content: a long-running daemon or
console shows an edited template, stylesheet or article at once, never a stale render."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from newsletter.model import Subscriber
from newsletter.project import load_project
from newsletter.send.pipeline import Prepared, prepare
from newsletter.settings import resolve
from newsletter.timing import next_due

NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("America/New_York"))
GREETING = '<p class="greeting">{{ greeting }}</p>\n'


def prepared(group: Path) -> tuple[Prepared, Subscriber]:
    project = load_project(resolve(group, environ={}))
    due = next_due(project.schedule, NOW)
    assert due is not None
    return prepare(project, due, now=NOW, columns=project.columns()), next(iter(project.members()))


def html_of(prep: Prepared, member: Subscriber) -> str:
    msg = message_from_bytes(prep.build(member, now=NOW).data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    body = msg.get_body(("html",))
    assert body is not None
    return str(body.get_content())


def edit(path: Path, old: str, new: str) -> None:
    source = path.read_text(encoding="utf-8")
    assert old in source, f"{path.name} changed: edit another place"
    path.write_text(source.replace(old, new, 1), encoding="utf-8")


def test_an_edited_template_renders_anew_in_the_same_process(group: Path) -> None:
    prep, member = prepared(group)
    assert prep.renderer.fast
    before = html_of(prep, member)
    assert "Edited after the first render" not in before
    assert html_of(prepared(group)[0], member) == before  # the same files: the same mail

    edit(group / "templates" / "reminder.html", GREETING, GREETING + "<p>Edited after the first render</p>\n")
    assert "Edited after the first render" in html_of(prepared(group)[0], member)

    # Now a member value in logic: the analysis of the edited text, not the remembered answer.
    edit(
        group / "templates" / "reminder.html",
        GREETING,
        GREETING + "{% if member.name %}<p>Named</p>{% endif %}\n",
    )
    again, member = prepared(group)
    assert not again.renderer.fast and again.renderer.traceable
    assert (">Named</p>" in html_of(again, member)) is bool(member.name)


def test_an_edited_stylesheet_is_inlined_anew(group: Path) -> None:
    prep, member = prepared(group)
    assert "letter-spacing:7px" not in html_of(prep, member)
    with (group / "templates" / "style.css").open("a", encoding="utf-8") as fh:
        fh.write("\np { letter-spacing: 7px }\n")
    assert "letter-spacing:7px" in html_of(prepared(group)[0], member)


def test_an_edited_article_gives_a_new_excerpt(group: Path) -> None:
    prep, member = prepared(group)
    article = prep.context["article"]
    assert article is not None
    first = article.excerpt_text.split(".")[0]
    path = next(
        p for p in (group / "content" / "articles").iterdir() if first in p.read_text(encoding="utf-8")
    )
    edit(path, first, "Rewritten opening sentence")
    assert "Rewritten opening sentence" in html_of(prepared(group)[0], member)


def test_premailer_loads_requests_only_when_it_uses_it() -> None:
    """Inlining never fetches a stylesheet, so `requests` is not loaded; used, it is the real one."""
    script = (
        "import sys\n"
        "from newsletter.compose.inline import inline_css\n"
        "html = inline_css('<html><head><style>p {color: red}</style></head><body><p>x</p></body></html>')\n"
        "assert 'color:red' in html, html\n"
        "assert 'requests' not in sys.modules and 'urllib3' not in sys.modules\n"
        "import premailer.premailer, requests\n"
        "assert premailer.premailer.requests.Session is requests.Session\n"
        "assert sys.modules['requests'] is requests and 'urllib3' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
