"""End to end in headless Chromium: a member answers from her RSVP link, changes her mind, says how many
come to the dinner, and sets her preferences; a forged link gets the neutral page.

The app is served by uvicorn on 127.0.0.1 (tests/test_web.py); the links are built with
``newsletter.links`` exactly as a reminder carries them.  Every page on the way passes the checks of
tests/browser.py (axe-core with no serious or critical finding, 7:1 contrast, 16 px text, 44 px
targets, the keyboard) at 320 px, and works with JavaScript off: plain forms, no script.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter import links
from newsletter.inputs.schedule import load_schedule
from newsletter.settings import resolve
from newsletter.state.answers import preferences_of, rsvp_counts, rsvps
from newsletter.state.ledger import Ledger

from . import browser
from .smtpd import Server
from .test_signup_e2e import WAIT, heading, page_problems, press_the_button_with_the_keyboard
from .test_web import STATE, Site, start_site

pytestmark = pytest.mark.browser
driver = browser.driver  # the session's headless Chromium (a fixture)

DINNER = "2026-12-08"
ROSA = "rosa.delgado@example.org"


def answers(site: Site) -> dict[str, tuple[str, int]]:
    with Ledger(site.group / STATE) as ledger:
        return {a: (r.answer, r.people) for a, r in rsvps(ledger, DINNER).items()}


def no_script(driver: browser.Driver) -> None:
    """The pages need no JavaScript: none is on them (and the CSP would block it anyway)."""
    assert driver.execute_script("return document.scripts.length") == 0


def click(driver: browser.Driver, css: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    (found,) = [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.text.strip() == text]
    found.click()


def test_a_member_answers_changes_her_mind_and_brings_guests(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch, driver: browser.Driver
) -> None:
    with start_site(group, smtp, monkeypatch) as site:
        secret = resolve(group).secret
        token = links.rsvp_token(secret, DINNER, ROSA)
        yes = links.rsvp_url(site.url, token, "yes")

        # The "I'll be there" link of the dinner: a page asking how many come, on a 320 px phone.
        assert browser.check_page(driver, yes) == []
        browser.open_page(driver, yes, width=browser.NARROW)
        heading(driver, "Will you be there?")
        no_script(driver)
        assert answers(site) == {}
        click(driver, "main form button", "3 people")
        heading(driver, "Thank you, see you there")
        assert page_problems(driver) == []
        assert answers(site) == {ROSA: ("yes", 3)}

        # She changes her mind from the page's own link, then presses the one button with the keyboard.
        click(driver, "main a", "tell us you can’t make it")
        heading(driver, "Can’t make it?")
        assert page_problems(driver) == []
        assert (
            "You told us on Wednesday, November 25 that you’ll be there, 3 people in all."
            in driver.page_source
        )
        press_the_button_with_the_keyboard(driver)
        heading(driver, "Thank you for telling us")
        assert page_problems(driver) == []
        assert answers(site) == {ROSA: ("no", 0)}

        # And back again, with her sister: two people in all.
        click(driver, "main a", "tell us you’ll be there")
        heading(driver, "Will you be there?")
        click(driver, "main form button", "2 people")
        heading(driver, "Thank you, see you there")
        assert answers(site) == {ROSA: ("yes", 2)}

        # Two more members answer; the organisers' counts add up.
        for address, answer, people in (
            ("linda.harper@example.org", "yes", "4"),
            ("carol.jenkins@example.org", "no", ""),
        ):
            link = links.rsvp_url(site.url, links.rsvp_token(secret, DINNER, address), answer)
            assert site.http.post(link, data={"people": people} if people else {}).status_code == 200
        with Ledger(group / STATE) as ledger:
            counts = rsvp_counts(ledger, DINNER, 5)
        assert str(counts) == "2 coming (6 people), 1 can't come, 2 no answer"

        # A forged link: the neutral page, and nothing changes.
        forged = links.rsvp_url(site.url, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "no")
        assert browser.check_page(driver, forged) == []
        heading(driver, "This link cannot take an answer")
        assert driver.find_elements("css selector", "main form") == []
        assert answers(site)[ROSA] == ("yes", 2)


def test_a_member_sets_her_preferences_in_a_browser(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch, driver: browser.Driver
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    with start_site(group, smtp, monkeypatch) as site:
        link = links.preferences_url(site.url, links.preferences_token(resolve(group).secret, ROSA))
        assert browser.check_page(driver, link) == []
        browser.open_page(driver, link, width=browser.NARROW)
        heading(driver, "Your reminder choices")
        no_script(driver)
        # No reminder at all is explained beside the choices (and nothing is saved).
        for box in ("reminder-1", "reminder-2"):
            driver.find_element(By.ID, box).click()
        driver.find_element(By.CSS_SELECTOR, "main form button").click()
        WebDriverWait(driver, WAIT).until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.error[role=alert]"))
        heading(driver, "Your reminder choices")
        assert page_problems(driver) == []
        assert "Please choose at least one reminder" in driver.page_source
        # Labels work as tap targets: tapping the text ticks the box.
        driver.find_element(By.CSS_SELECTOR, "label[for='reminder-2']").click()  # the day-before: on
        driver.find_element(By.CSS_SELECTOR, "label[for='discreet']").click()
        Select(driver.find_element(By.ID, "paused_until")).select_by_value("2027-04-13")
        driver.find_element(By.CSS_SELECTOR, "main form button").click()
        heading(driver, "Your choices are saved")
        assert page_problems(driver) == []
        assert "Discreet mode is on" in driver.page_source

        schedule = load_schedule(group / "schedule.yaml")
        with Ledger(group / STATE) as ledger:
            mine = preferences_of(ledger, schedule)[ROSA]
        assert mine.reminders == frozenset({"day-before"}) and mine.discreet and not mine.plain_text
        assert str(mine.paused_until) == "2027-04-13"

        # Back to the page: it shows what she chose.
        click(driver, "main a", "change your choices")
        heading(driver, "Your reminder choices")
        assert not driver.find_element(By.ID, "reminder-1").is_selected()
        assert driver.find_element(By.ID, "reminder-2").is_selected()
        assert driver.find_element(By.ID, "discreet").is_selected()
        pause = Select(driver.find_element(By.ID, "paused_until")).first_selected_option
        assert pause.get_attribute("value") == "2027-04-13"

        # A link that opens nothing: the neutral page, as accessible as the rest.
        assert browser.check_page(driver, links.preferences_url(site.url, "x" * links.TOKEN_LENGTH)) == []
        heading(driver, "This link does not open any choices")
