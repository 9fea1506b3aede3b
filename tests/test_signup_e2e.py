"""End to end in headless Chromium: sign up, confirm from the mail, then unsubscribe from a real reminder.

The app is served by uvicorn on 127.0.0.1, mail goes to a real aiosmtpd, `newsletter send` runs with
NEWSLETTER_PUBLIC_URL pointing at the app.  Every page on the way passes the accessibility checks of
tests/browser.py (axe-core, 7:1 contrast, 16 px text, 44 px targets, keyboard, lang/dir).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import browser
from .conftest import BEFORE_FIRST, CliRunner
from .smtpd import Server
from .test_web import Site, start_site

pytestmark = pytest.mark.browser
driver = browser.driver  # the session's headless Chromium (a fixture)


#: How long a page may take to come after a form was sent (generous: CI machines can be busy).
WAIT = 30


def heading(driver: browser.Driver, text: str) -> None:
    """Wait until the page whose h1 is ``text`` has replaced the one a form was sent from, and loaded.

    The old page goes away while this looks, so each look is one script that reads the document as it
    is then (no element kept from one look to the next), and a look that lands in the middle of the
    swap (a stale element, a script run in a page going away) just looks again.
    """
    from selenium.common.exceptions import (
        JavascriptException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    def arrived(d: browser.Driver) -> bool:
        return bool(
            d.execute_script(
                """
                const h1 = document.querySelector("h1");
                if (document.readyState !== "complete" || h1 === null) return false;
                return h1.innerText.trim() === arguments[0];
                """,
                text,
            )
        )

    ignored = (StaleElementReferenceException, NoSuchElementException, JavascriptException)
    WebDriverWait(driver, WAIT, ignored_exceptions=ignored).until(
        arrived, f"the page with the heading {text!r} did not come within {WAIT} s"
    )


def page_problems(driver: browser.Driver) -> list[str]:
    """The checks on the page now loaded (a POST's answer cannot be loaded again by URL)."""
    return browser.axe_problems(driver) + browser.emc_problems(driver, mode="page")


def press_the_button_with_the_keyboard(driver: browser.Driver) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    button = driver.find_element(By.CSS_SELECTOR, "main form button")
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    for _ in range(10):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if driver.switch_to.active_element == button:
            break
    assert driver.switch_to.active_element == button, "the button cannot be reached with Tab"
    ActionChains(driver).send_keys(Keys.ENTER).perform()


def test_sign_up_confirm_and_unsubscribe_in_a_browser(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch, driver: browser.Driver
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    address = "dana.wells@example.org"
    with start_site(group, smtp, monkeypatch) as site:
        # The sign-up form, on a 320 px phone, filled in and sent with the keyboard alone.
        assert browser.check_page(driver, f"{site.url}/signup") == []
        browser.open_page(driver, f"{site.url}/signup", width=browser.NARROW)
        driver.find_element(By.ID, "name").send_keys("Dana Wells")
        driver.find_element(By.ID, "email").send_keys(address, Keys.ENTER)
        heading(driver, "Please check your email")
        assert page_problems(driver) == []
        assert address not in site.members()

        # The confirmation mail reached the SMTP server; its link opens a page, the button confirms.
        (mail,) = smtp.messages
        assert mail.rcpt_tos == [address]
        link = site.confirm_link()
        assert browser.check_page(driver, link) == []  # opening it (twice) changes nothing
        assert address not in site.members()
        press_the_button_with_the_keyboard(driver)
        heading(driver, "Thank you")
        assert page_problems(driver) == []
        assert address in site.members()

        # A real reminder goes out to everyone, her included, with links to this app.
        code, out, err = run(group, "send", "--at", BEFORE_FIRST)
        assert code == 0, err
        reminders = smtp.messages[1:]
        assert len(reminders) == 6 and sum(m.rcpt_tos == [address] for m in reminders) == 1
        footer = site.footer_link(address)
        assert browser.check_page(driver, footer) == []
        assert site.suppressed() == {}
        press_the_button_with_the_keyboard(driver)
        heading(driver, "You are unsubscribed")
        assert page_problems(driver) == []
        assert_unsubscribed(site, address, run)


def assert_unsubscribed(site: Site, address: str, run: CliRunner) -> None:
    assert site.suppressed()[address][1] == "link"
    assert address not in site.members()
    before = len(site.smtp.messages)
    code, out, err = run(site.group, "send", "--at", BEFORE_FIRST, "--reminder", "day-before")
    assert code == 0, err
    later = site.smtp.messages[before:]
    assert later and all(m.rcpt_tos != [address] for m in later)
