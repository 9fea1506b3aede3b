"""premailer's reading of a stylesheet kept in the render cache (`styles.json`): a mail inlined
with it is byte for byte what premailer alone gives, cold, warm across processes and with the file
damaged; an edited stylesheet is read anew; and the libraries premailer's import skips (requests,
cssutils until it parses CSS) are the real ones for everyone else."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.compose import render_cache
from newsletter.compose.render_cache import AnswerStore
from tests.test_render_cache import NOW, prepared

STYLESHEET = """/* a comment */
* { box-sizing: border-box }
body { margin: 0; font-family: Georgia, serif }
p, li { color: #333 !important; line-height: 1.4 }
p.lead { font-size: 18px; color: red }
a:hover { color: blue }
td:first-child { width: 20px }
#main .note { background-color: #eee; text-align: center }
img.right { float: right }
@media (max-width: 600px) { p { font-size: 14px !important } }
"""
BODY = """<body><div id="main"><p class="lead">Hello</p><p class="note" style="color: green">Note</p>
<ul><li>one</li><li><a href="https://example.org">two</a></li></ul>
<table><tr><td>a</td><td>b</td></tr></table><img class="right" src="cid:x" alt=""></div>
<p>{marker}</p></body>"""

#: One inlining in a new process: premailer alone ("fresh"), or through inline_shared with the
#: render cache in CACHE (its answer for a never-seen HTML); prints the HTML and whether cssutils
#: was loaded, as JSON.
SCRIPT = """
import json, sys
from pathlib import Path
mode, page, cache = sys.argv[1], Path(sys.argv[2]).read_text(encoding="utf-8"), Path(sys.argv[3])
from newsletter.compose.inline import OPTIONS
if mode == "fresh":
    import premailer
    out = premailer.Premailer(page, **OPTIONS).transform()
else:
    from newsletter.compose.inline import inline_shared
    out = inline_shared(page, cache)
print(json.dumps({"html": out, "cssutils": "cssutils.css" in sys.modules}))
"""


def page_with(css: str, marker: str) -> str:
    return f"<html><head><style>{css}</style></head>{BODY.format(marker=marker)}</html>"


def inlined(mode: str, page: str, cache: Path, tmp_path: Path) -> tuple[str, bool]:
    source = tmp_path / "page.html"
    source.write_text(page, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_"))}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(source), str(cache)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # cssutils kept quiet, as premailer's options ask
    found = json.loads(done.stdout)
    return found["html"], found["cssutils"]


def shared_render(group: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The HTML of the sample's next mailing, as premailer is given it."""
    from newsletter.compose import templates

    seen: list[str] = []
    monkeypatch.setattr(templates, "inline_shared", lambda html, cache_dir: seen.append(html) or html)
    prep, member = prepared(group)
    prep.build(member, now=NOW)
    assert seen
    return seen[0]


def damage(styles: Path) -> None:
    """Every answer kept in ``styles`` spoilt in another way (the file still valid JSON)."""
    data = json.loads(styles.read_bytes())
    spoilt = [
        lambda a: {**a, "rules": [[["x"], "p", "color:red"]]},
        lambda a: {**a, "pairs": a["pairs"][1:]},
        lambda a: {**a, "leftover": "2"},
        lambda a: {**a, "pairs": [[bulk, [["color"]]] for bulk, _ in a["pairs"]]},
        lambda a: None,
    ]
    for n, key in enumerate(data["answers"]):
        kept = data["answers"][key]
        data["answers"][key] = {**kept, "answer": spoilt[n % len(spoilt)](kept["answer"])}
    styles.write_text(json.dumps(data))


def change_a_value(styles: Path) -> None:
    """One declaration's value changed in place, the file still valid JSON of the right shape."""
    text = styles.read_text()
    old = re.findall(r'"(#[0-9a-fA-F]{3,6})"', text)[0]
    styles.write_text(text.replace(f'"{old}"', '"#123456"'))


@pytest.mark.parametrize("source", ["shipped", "varied"])
def test_inlined_with_kept_answers_is_what_premailer_alone_gives(
    source: str, group: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if source == "shipped":
        shipped = shared_render(group, monkeypatch)

        def page(marker: str) -> str:
            return shipped.replace("</body>", f"<p>{marker}</p></body>")
    else:

        def page(marker: str) -> str:
            return page_with(STYLESHEET, marker)

    cache = tmp_path / "cache"
    styles = cache / "styles.json"
    steps = ["cold", "warm", "warm", "damaged", "repaired", "changed", "garbage", "half"]
    for n, step in enumerate(steps):
        if step == "damaged":
            damage(styles)
        elif step == "changed":
            change_a_value(styles)
        elif step == "garbage":
            styles.write_bytes(os.urandom(200))
        elif step == "half":
            styles.write_bytes(styles.read_bytes()[:-100] if styles.is_file() else b"{")
        html = page(f"Edit {n}: a meeting note never seen before")  # not in inline/: premailer runs
        fresh, _ = inlined("fresh", html, cache, tmp_path)
        ours, loaded = inlined("cached", html, cache, tmp_path)
        assert ours == fresh, step
        assert styles.is_file(), step
        if step in ("warm", "repaired") and source == "shipped":
            assert not loaded, "the stylesheet was parsed again"  # the shipped mail needs no cssutils


def test_an_edited_stylesheet_is_never_answered_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = page_with(STYLESHEET, "first")
    before, _ = inlined("cached", first, cache, tmp_path)
    assert "font-size:18px" in before
    for old, new in [("18px", "19px"), ("p.lead", "p.leader"), ("!important; line", "; line"), ("*", "td")]:
        edited = page_with(STYLESHEET.replace(old, new, 1), "first")
        ours, _ = inlined("cached", edited, cache, tmp_path)
        assert ours == inlined("fresh", edited, cache, tmp_path)[0] != before, (old, new)
    assert inlined("cached", first, cache, tmp_path)[0] == before


def test_premailer_import_leaves_the_real_libraries_to_everyone_else() -> None:
    script = (
        "import sys, logging\n"
        "from newsletter.compose.inline import inline_css\n"
        "html = inline_css('<html><head><style>p {color: red}</style></head><body><p>x</p></body></html>')\n"
        "assert 'color:red' in html, html\n"
        "import premailer.premailer, cssutils\n"
        "assert type(cssutils).__name__ == 'module' and sys.modules['cssutils'] is cssutils\n"
        "assert premailer.premailer.cssutils.parseString is cssutils.parseString\n"
        "assert logging.getLogger('CSSUTILS').level == logging.CRITICAL\n"
        "import urllib.request, importlib.metadata\n"
        "assert callable(urllib.request.urlopen)\n"
        "assert importlib.metadata.version('premailer').startswith('3.10')\n"
        "import email.message, http.client\n"
        "assert email.message.EmailMessage and http.client.HTTPConnection\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_the_stylesheet_answers_are_bounded(tmp_path: Path) -> None:
    store = AnswerStore(tmp_path / "styles.json", max_answers=3, max_bytes=400)
    for n in range(5):
        store.put(f"k{n}", {"css": "x" * 50})
    store.put("too-big", "y" * 500)
    again = AnswerStore(tmp_path / "styles.json")
    assert [again.get(f"k{n}") is not None for n in range(5)] == [False, False, True, True, True]
    assert again.get("too-big") is None
    for n in range(5, 9):
        store.put(f"k{n}", {"css": "z" * 90})
    assert (tmp_path / "styles.json").stat().st_size <= 400
    assert AnswerStore(tmp_path / "styles.json").get("k8") is not None
    assert render_cache.style_store(tmp_path).max_answers == render_cache.MAX_STYLES
