"""The organisers' console in headless Chromium: signing in from the mailed link, every page checked
with axe-core and our own checks (7:1 contrast, 16 px text, 44 px targets, no sideways scrolling) at
320 and 1280 px, and the list's round trips done as an organiser does them, by the forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import browser
from .conftest import BEFORE_FIRST, CliRunner
from .test_console import MARGARET, Console, start_console
from .test_signup_e2e import heading

pytestmark = pytest.mark.browser
driver = browser.driver  # the session's headless Chromium, shared by every test
WIDTHS = (browser.NARROW, 1280)


def problems_here(driver: browser.Driver) -> list[str]:
    """axe-core (serious and critical) and our checks on the page now loaded, at 320 and 1280 px."""
    found = []
    for width in WIDTHS:
        browser.set_width(driver, width)
        found += [
            f"[{width}px] {p}"
            for p in browser.axe_problems(driver) + browser.emc_problems(driver, mode="page")
        ]
    return found


def submit(driver: browser.Driver, action: str, heading_text: str) -> None:
    """Press the button of the form that posts to ``action`` and wait for the page with ``heading_text``."""
    from selenium.webdriver.common.by import By

    form = driver.find_element(By.CSS_SELECTOR, f'form[action$="{action}"]')
    form.find_element(By.CSS_SELECTOR, "button").click()
    heading(driver, heading_text)


def sign_in(driver: browser.Driver, console: Console) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.delete_all_cookies()
    browser.open_page(driver, f"{console.admin}/", width=browser.NARROW)  # no session: the sign-in page
    heading(driver, "Sign in to the organisers’ console")
    assert problems_here(driver) == []
    driver.find_element(By.ID, "email").send_keys(MARGARET, Keys.ENTER)
    heading(driver, "Check your email")
    assert problems_here(driver) == []
    browser.open_page(driver, console.link(), width=browser.NARROW)
    heading(driver, "Sign in")
    assert problems_here(driver) == []
    driver.find_element(By.CSS_SELECTOR, "main form button").click()
    heading(driver, "Overview")


@pytest.fixture
def console(group: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    with start_console(group, monkeypatch) as started:
        yield started


def test_every_page_passes_the_accessibility_checks(
    console: Console, driver: browser.Driver, run: CliRunner
) -> None:
    from selenium.webdriver.common.by import By

    code, out, err = run(console.group, "send", "--at", BEFORE_FIRST)  # something for Deliveries
    assert code == 0, err
    sign_in(driver, console)
    pages = {
        "/": "Overview",
        "/members": "Members",
        "/meetings": "Meetings",
        "/meetings/rule": "The regular meeting",
        "/meetings/2026-12-08": "The meeting of Tuesday, December 8, 2026",
        "/mails": "Mails",
        "/mails/2026-12-08/week-before": "The week-before mail of Tuesday, December 8",
        "/deliveries": "Deliveries",
        "/deliveries/outbox/2026-12-08/week-before": "Who got outbox/2026-12-08/week-before",
        "/activity": "Activity",
    }
    for path, title in pages.items():
        browser.open_page(driver, f"{console.admin}{path}", width=browser.NARROW)
        heading(driver, title)
        if path.startswith("/mails/"):  # the frames show the mail itself, as the member gets it
            for frame in driver.find_elements(By.TAG_NAME, "iframe"):
                driver.switch_to.frame(frame)
                assert "Copper River Grill" in driver.find_element(By.TAG_NAME, "body").text
                driver.switch_to.default_content()
        found = problems_here(driver)
        assert found == [], (path, found)
    browser.open_page(driver, f"{console.admin}/members", width=browser.NARROW)
    assert browser.keyboard_problems(driver) == []
    # The answer to a form: the check of a meeting's change.
    browser.open_page(driver, f"{console.admin}/meetings/2026-12-08", width=browser.NARROW)
    submit(driver, "/meetings/2026-12-08", "Check the change before saving")
    assert problems_here(driver) == []
    # A member's own page, and signing out.
    browser.open_page(driver, f"{console.admin}/members", width=browser.NARROW)
    driver.find_element(By.PARTIAL_LINK_TEXT, "Change or unsubscribe row").click()
    heading(driver, "Linda Harper")
    assert problems_here(driver) == []
    submit(driver, "/sign-out", "You are signed out")
    assert problems_here(driver) == []


def test_add_rename_unsubscribe_and_import_in_the_browser(
    console: Console, driver: browser.Driver, run: CliRunner, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(driver, console)
    browser.open_page(driver, f"{console.admin}/members", width=browser.NARROW)
    driver.find_element(By.ID, "email").send_keys("dana.wells@example.org")
    driver.find_element(By.ID, "name").send_keys("Dana Wells")
    submit(driver, "/members/add", "Members")
    assert "The member was added" in driver.find_element(By.CSS_SELECTOR, ".done").text
    assert "dana.wells@example.org,Dana Wells" in console.members_file()

    row = driver.find_element(By.XPATH, "//li[contains(., 'dana.wells@example.org')]//a")
    row.click()
    heading(driver, "Dana Wells")
    field = driver.find_element(By.ID, "name")
    field.clear()
    field.send_keys("Dana W.")
    submit(driver, "/rename", "Members")
    assert "dana.wells@example.org,Dana W." in console.members_file()

    driver.find_element(By.XPATH, "//li[contains(., 'zoe.martin@example.org')]//a").click()
    heading(driver, "Zoë Martin")
    submit(driver, "/unsubscribe", "Members")
    assert "zoe.martin@example.org" not in console.members_file()

    upload = tmp_path / "new members.csv"
    upload.write_text(
        "email,name\nann.new@example.org,Ann New\nzoe.martin@example.org,Zoë\n", encoding="utf-8"
    )
    driver.find_element(By.ID, "file").send_keys(str(upload))
    submit(driver, "/members/import", "Importing new_members.csv: what would change")
    page = driver.find_element(By.TAG_NAME, "main").text
    assert "ann.new@example.org" in page and "not added: this member unsubscribed" in page
    assert problems_here(driver) == []
    assert "ann.new" not in console.members_file()
    submit(driver, "/members/import/confirm", "Members")
    listed = console.members_file()
    assert "ann.new@example.org,Ann New" in listed and "zoe.martin" not in listed

    code, out, err = run(console.group, "subscribers", "list")
    assert code == 0, err
    assert re.search(r"dana\.wells@example\.org +Dana W\.", out) and re.search(
        r"ann\.new@example\.org +Ann New", out
    )
    assert re.search(r"zoe\.martin@example\.org +since .*removed by an organiser", out)
