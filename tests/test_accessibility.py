"""Accessibility of every mail (issue 7): axe-core and our own checks in headless Chromium, the
plain-text part, and `preview --screenshot`.

Needs Debian's chromium + chromium-driver (apt-get install chromium chromium-driver), and selenium
and axe-core, which `pip install -e '.[test]'` installs.  Without Chromium the browser tests skip,
saying what to install (and fail instead under NEWSLETTER_REQUIRE_BROWSER=1, as in CI).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest

from newsletter.cli import screenshot

from . import browser
from .conftest import BEFORE_FIRST, ROOT, CliRunner
from .smtpd import Recorder, Server

driver = browser.driver  # the session's headless Chromium (a fixture)

#: When the dinner's week-before reminder is due: a change notice needs members who had a reminder.
DUE = "2026-12-01T09:05"
CANCELLED_LINE = "    - {date: 2027-06-08, cancelled: true, note: Room unavailable; see you in August.}\n"


@dataclass(frozen=True)
class Mail:
    """One mail to check: how to preview it, and what it must still say with CSS and images off."""

    name: str
    kind: str
    args: tuple[str, ...]
    must_say: tuple[str, ...]
    cancel_june: bool = False
    edit_after_send: tuple[str, str] | None = None  # a change notice: send, then edit schedule.yaml
    calendar_link: bool = True  # a cancelled meeting has nothing to add to a calendar


MAILS = (
    Mail(
        "dinner",
        "reminder",
        ("--at", BEFORE_FIRST),
        (
            "Planning dinner",
            "Tuesday, December 8, 2026",
            "6:00 PM",
            "Copper River Grill",
            "775 Haywood Rd, Greenville, SC 29607",
            "private room",
        ),
    ),
    Mail(
        "meeting-with-a-cancelled-date",
        "reminder",
        ("--at", BEFORE_FIRST, "--meeting", "2027-02-09", "--reminder", "day-before"),
        (
            "Support group meeting",
            "Tuesday, February 9, 2027",
            "6:00 PM",
            "Community room",
            "Greenville, SC",
            "Tuesday, June 8, 2027",
            "Cancelled. Room unavailable; see you in August.",
        ),
        cancel_june=True,
    ),
    Mail(
        "change-notice",
        "change",
        ("--at", DUE, "--change"),
        ("Changed: Planning dinner", "was 6:00 PM, now 6:30 PM", "Copper River Grill", "775 Haywood Rd"),
        edit_after_send=(
            '      title: Planning dinner\n      time: "18:00"',
            '      title: Planning dinner\n      time: "18:30"',
        ),
    ),
    Mail(
        "cancellation-notice",
        "change",
        ("--at", DUE, "--change"),
        ("Cancelled: Planning dinner", "This meeting is cancelled.", "Tuesday, December 8, 2026"),
        edit_after_send=(
            "      title: Planning dinner\n",
            "      title: Planning dinner\n      cancelled: true\n",
        ),
        calendar_link=False,
    ),
)
#: Mail kinds that are not templates of their own.
NOT_KINDS = {"base"}


def prepare(run: CliRunner, group: Path, mail: Mail, monkeypatch: pytest.MonkeyPatch) -> None:
    if mail.edit_after_send:
        # The members must really have had the reminder: over SMTP (an outbox try-out tells nobody).
        with Server(Recorder()) as smtp, monkeypatch.context() as env:
            env.setenv("SMTP_URL", smtp.url)
            code, out, err = run(group, "send", "--at", DUE)
            assert code == 0, err
            assert smtp.messages, "the reminder reached nobody, so there is no change to tell"
        schedule = group / "schedule.yaml"
        old, new = mail.edit_after_send
        text = schedule.read_text(encoding="utf-8")
        assert old in text
        schedule.write_text(text.replace(old, new, 1), encoding="utf-8")
    if mail.cancel_june:
        schedule = group / "schedule.yaml"
        text = schedule.read_text(encoding="utf-8")
        assert "  dates:\n" in text
        schedule.write_text(text.replace("  dates:\n", "  dates:\n" + CANCELLED_LINE, 1), encoding="utf-8")


def preview(run: CliRunner, group: Path, mail: Mail, out: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    prepare(run, group, mail, monkeypatch)
    code, stdout, err = run(group, "preview", *mail.args, "--out", str(out))
    assert code == 0, err
    return out


def preview_text(run: CliRunner, group: Path, mail: Mail, monkeypatch: pytest.MonkeyPatch) -> str:
    prepare(run, group, mail, monkeypatch)
    code, out, err = run(group, "preview", *mail.args, "--text")
    assert code == 0, err
    return out


def test_every_mail_kind_is_checked() -> None:
    """A new kind of mail (templates/KIND.html) needs an entry in MAILS above to be checked."""
    kinds = {path.stem for path in (ROOT / "templates").glob("*.html")} - NOT_KINDS
    missing = sorted(kinds - {mail.kind for mail in MAILS})
    assert not missing, (
        f"templates/{missing[0]}.html has no accessibility check: add a Mail(...) to MAILS in "
        "tests/test_accessibility.py with the preview arguments that render it"
    )


@pytest.mark.browser
@pytest.mark.parametrize("mail", MAILS, ids=lambda m: m.name)
def test_mail_passes_axe_and_our_checks(
    mail: Mail,
    driver: browser.Driver,
    group: Path,
    run: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    html = preview(run, group, mail, tmp_path / "mail.html", monkeypatch)
    problems = browser.check_mail(driver, html)
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.parametrize("mail", MAILS, ids=lambda m: m.name)
def test_mail_fits_a_320px_screen(
    mail: Mail,
    driver: browser.Driver,
    group: Path,
    run: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    html = preview(run, group, mail, tmp_path / "mail.html", monkeypatch)
    browser.open_html(driver, html, width=320)
    assert browser.scroll_width(driver) <= 320


@pytest.mark.browser
@pytest.mark.parametrize("mail", MAILS, ids=lambda m: m.name)
def test_mail_keeps_its_meaning_without_css_and_images(
    mail: Mail,
    driver: browser.Driver,
    group: Path,
    run: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    html = preview(run, group, mail, tmp_path / "mail.html", monkeypatch)
    browser.open_html(driver, html, width=600)
    text, links = browser.text_without_css(driver)
    flat = " ".join(text.split())
    for needed in mail.must_say:
        assert needed in flat
    assert ("Add to calendar" in links) == mail.calendar_link
    assert "Unsubscribe from these reminders" in links


def test_axe_core_comes_with_the_test_extras() -> None:
    """axe.min.js is a file of a PyPI package (no npm): installed by pip install -e '.[test]'."""
    version = browser.axe_version()
    assert version, f"no version banner in {browser.AXE_FILE}"
    assert int(version.split(".")[0]) == 4, f"axe-core {version}: the checks are written for axe-core 4"


# -- the checks themselves catch what they are meant to catch -------------------------------------

BAD_MAIL = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Bad</title></head>
<body><div>
<h2>Starts at h2</h2><h4>then skips to h4</h4>
<table><tr><td><img src="x.png">
<p style="color:#666666">Grey text: 5.7:1 passes AA, not AAA.</p>
<p style="font-size:13px;color:#000">Small print.</p>
<p><a href="https://example.org/">click here</a></p>
<p><a href="https://example.org/long">https://example.org/long</a></p>
<div style="width:500px">Too wide for a phone.</div>
</td></tr></table>
</div></body></html>
"""


@pytest.mark.browser
def test_the_checks_catch_the_common_misses(driver: browser.Driver, tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(BAD_MAIL, encoding="utf-8")
    browser.open_html(driver, page, width=320)
    found = "\n".join(browser.emc_problems(driver, mode="mail"))
    for expected in (
        "<html> has no lang",
        "<html> has no dir",
        "body wrapper div has no lang",
        'layout table without role="presentation"',
        "image without alt",
        "not an h1",
        "heading level skipped",
        "contrast 5.74:1 (#666666 on #ffffff)",
        "text smaller than 16px (13px)",
        'link text does not make sense alone: "click here"',
        "link text is a bare URL",
        "tap target",
        "scrolls sideways",
    ):
        assert expected in found
    axe = "\n".join(browser.axe_problems(driver))
    for rule in ("html-has-lang", "image-alt", "color-contrast-enhanced"):
        assert f"axe {rule} " in axe


GOOD_PAGE = """<!DOCTYPE html>
<html lang="en" dir="ltr"><head><meta charset="utf-8"><title>Sign up</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { margin: 0; font: 18px/1.5 Arial, sans-serif; color: #1a1a1a; background: #fff; }
main { padding: 16px; }
input, button { display: block; box-sizing: border-box; min-height: 44px; width: 100%; font-size: 18px; }
button { background: #0b3d91; color: #fff; border: 0; }
</style></head>
<body><main><h1>Sign up for the reminders</h1>
<form><label for="email">Your email address</label><input id="email" name="email" type="email">
<button type="submit">Sign up</button></form></main></body></html>
"""
BAD_PAGE = """<!DOCTYPE html>
<html lang="en" dir="ltr"><head><meta charset="utf-8"><title>Sign up</title>
<style>* { outline: none; } input, button { min-height: 44px; font-size: 18px; }</style></head>
<body><main><h1>Sign up</h1>
<form><input name="email" placeholder="Email"><button type="submit" tabindex="1">Go</button></form></main>
</body></html>
"""


@pytest.mark.browser
def test_check_page_passes_a_good_page_and_catches_a_bad_one(driver: browser.Driver, tmp_path: Path) -> None:
    """check_page() is what the tests of `newsletter serve`'s pages run on each page."""
    good, bad = tmp_path / "good.html", tmp_path / "bad.html"
    good.write_text(GOOD_PAGE, encoding="utf-8")
    bad.write_text(BAD_PAGE, encoding="utf-8")
    assert browser.check_page(driver, good.as_uri()) == []
    found = "\n".join(browser.check_page(driver, bad.as_uri()))
    for expected in ("axe tabindex ", "form field without a <label>", "Tab #1 reached <button", "tap target"):
        assert expected in found
    bad.write_text(BAD_PAGE.replace(' tabindex="1"', ""), encoding="utf-8")
    assert "no visible focus indicator on <input" in "\n".join(browser.check_page(driver, bad.as_uri()))


# -- the plain-text part -------------------------------------------------------------------------

URL = re.compile(r"(?:https?://|mailto:|www\.)\S+")


@pytest.mark.parametrize("mail", MAILS, ids=lambda m: m.name)
def test_plain_text_reads_on_its_own(
    mail: Mail, group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = preview_text(run, group, mail, monkeypatch)
    assert not re.search(r"</?[a-zA-Z][^>]*>", text), "HTML tag in the plain-text part"
    assert not re.search(r"&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);", text), "HTML entity in the plain-text part"
    for number, line in enumerate(text.splitlines(), 1):
        urls = URL.findall(line)
        if urls:
            assert line.strip() == urls[0], f"line {number}: a URL must stand alone on its line: {line!r}"
        else:
            assert len(line) <= 78, f"line {number} is {len(line)} characters long: {line!r}"
    flat = " ".join(text.split())
    for needed in mail.must_say:
        assert needed in flat
    assert ("Add to calendar:" in text) == mail.calendar_link
    assert "Unsubscribe from these reminders:" in text
    assert "\n\n\n\n" not in text, "more than two blank lines in a row"


# -- preview --screenshot ------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.browser
@pytest.mark.parametrize("width", [320, 600])
def test_preview_screenshot(width: int, group: Path, run: CliRunner, tmp_path: Path) -> None:
    png = tmp_path / "shots" / "mail.png"
    code, out, err = run(
        group,
        "preview",
        "--at",
        BEFORE_FIRST,
        "--out",
        str(tmp_path / "mail.html"),
        "--screenshot",
        str(png),
        "--width",
        str(width),
    )
    assert code == 0, err
    assert f"Screenshot at {width} px wide saved to {png}" in out
    shot_width, shot_height = png_size(png)
    assert shot_width == width
    assert shot_height > 1000  # the whole mail, not one screenful


def test_the_readme_screenshots_are_committed() -> None:
    """docs/screenshots.sh makes them; the README shows them."""
    assert png_size(ROOT / "docs" / "dinner-320.png")[0] == 320
    assert png_size(ROOT / "docs" / "dinner-600.png")[0] == 600


def test_screenshot_without_a_browser_says_what_to_install(
    group: Path, run: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screenshot, "BROWSERS", (str(tmp_path / "no-such-chromium"),))
    png = tmp_path / "mail.png"
    code, out, err = run(
        group, "preview", "--at", BEFORE_FIRST, "--out", str(tmp_path / "m.html"), "--screenshot", str(png)
    )
    assert code == 1
    assert "apt-get install chromium" in err
    assert not png.exists()


def test_screenshot_when_the_browser_dies_says_so(
    group: Path, run: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screenshot, "BROWSERS", ("/bin/false",))
    png = tmp_path / "mail.png"
    code, out, err = run(
        group, "preview", "--at", BEFORE_FIRST, "--out", str(tmp_path / "m.html"), "--screenshot", str(png)
    )
    assert code == 1
    assert "headless Chromium stopped (exit code 1)" in err
    assert not png.exists()


@pytest.mark.browser
def test_sign_up_confirmation_mail_passes_axe_and_our_checks(
    driver: browser.Driver, group: Path, tmp_path: Path
) -> None:
    from email import message_from_bytes, policy

    from newsletter.project import load_project
    from newsletter.settings import resolve
    from newsletter.web.public import Site

    site = Site(load_project(resolve(group, environ={})), base_url="https://news.example.org")
    envelope = site.confirmation("ann@example.org", "https://news.example.org/confirm/TOKEN")
    html = message_from_bytes(envelope.data, policy=policy.default).get_body(("html",))
    assert html is not None
    path = tmp_path / "confirm.html"
    path.write_text(html.get_content(), encoding="utf-8")
    problems = browser.check_mail(driver, path)
    assert not problems, "\n".join(problems)
    browser.open_html(driver, path, width=320)
    assert browser.scroll_width(driver) <= 320
