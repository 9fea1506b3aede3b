"""Headless Chromium for the browser tests: a session-wide driver, axe-core, and our own checks.

Everything runs offline against Debian's ``chromium`` + ``chromium-driver``, with selenium and the
axe-core that ``pip install -e '.[test]'`` installs (axe.min.js, shipped inside the PyPI package
``axe-playwright-python``; only that file is used).  A machine without Chromium skips the tests
marked ``browser`` with one reason line that says what to install; with NEWSLETTER_REQUIRE_BROWSER=1
(as .ci/run sets it) that skip is a failure instead, so CI never skips them.

The checks, beyond axe-core, are the ones HTML mail most often misses (see issue 7):
``lang``/``dir``, presentation tables, ``alt``, heading order, link texts that make sense alone,
7:1 contrast (WCAG AAA) computed from the rendered styles, 16 px text, 44 px tap targets, and no
sideways scrolling at 320 px.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import pytest

from newsletter.cli.screenshot import FLAGS, find_browser
from newsletter.errors import NewsletterError

#: The PyPI package whose files include axe-core's axe.min.js (a test extra in pyproject.toml).
AXE_PACKAGE = "axe-playwright-python"
AXE_FILE = "axe_playwright_python/axe.min.js"
CHROMEDRIVERS = ("/usr/bin/chromedriver", "chromedriver")
INSTALL_BROWSER = "apt-get install chromium chromium-driver"
#: Set (to anything but 0) where a missing browser must fail the run instead of skipping: .ci/run.
REQUIRE_BROWSER = "NEWSLETTER_REQUIRE_BROWSER"
#: Read once, at import: the autouse fixture clean_env hides every NEWSLETTER_* from the tests.
BROWSER_REQUIRED = os.environ.get(REQUIRE_BROWSER, "") not in ("", "0")
#: axe-core rule sets: WCAG 2.x A, AA and AAA (7:1 contrast), and axe's best practices.
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "wcag2aaa", "best-practice")
#: What fails the build; "minor" and "moderate" findings are printed by the report but pass.
AXE_FAILING = ("serious", "critical")
NARROW, WIDE = 320, 600
MIN_CONTRAST = 7.0
MIN_FONT_PX = 16.0
MIN_TARGET_PX = 44.0
#: Inline links inside running text are exempt from the 44 px (WCAG 2.5.5's "inline" exception),
#: but their lines must be spaced at least this much (line-height / font-size) to be hit reliably.
MIN_INLINE_LINE_HEIGHT = 1.4

Driver = Any  # selenium.webdriver.Chrome; typed loosely so this module imports without selenium


def chromedriver() -> str | None:
    return next(filter(None, map(shutil.which, CHROMEDRIVERS)), None)


def missing_browser() -> str | None:
    """Why the browser tests cannot run on this machine, in one line; None when they can."""
    missing = []
    try:
        find_browser()
    except NewsletterError:
        missing.append("chromium")
    if chromedriver() is None:
        missing.append("chromedriver")
    if not missing:
        return None
    return f"needs headless Chromium, not found here: {' and '.join(missing)} — install: {INSTALL_BROWSER}"


def require_browser() -> None:
    """Skip the running test if Chromium or chromedriver is missing; fail instead under REQUIRE_BROWSER.

    The one place that decides: conftest.py calls it before every test marked ``browser``.
    """
    reason = missing_browser()
    if reason is None:
        return
    if BROWSER_REQUIRED:
        pytest.fail(f"{reason} ({REQUIRE_BROWSER} is set: browser tests must run here)", pytrace=False)
    pytest.skip(reason)


def _fail_install(what: str) -> NoReturn:
    pytest.fail(f"browser tests need {what}", pytrace=False)


@functools.cache
def axe_source() -> str:
    """axe-core's axe.min.js, from the installed Python package that ships it."""
    try:
        path = Path(str(metadata.distribution(AXE_PACKAGE).locate_file(AXE_FILE)))
    except metadata.PackageNotFoundError:
        _fail_install(f"axe-core from the package {AXE_PACKAGE}: pip install -e '.[test]'")
    if not path.is_file():
        _fail_install(f"axe-core's {AXE_FILE}, missing from {AXE_PACKAGE}: pip install -e '.[test]'")
    return path.read_text(encoding="utf-8")


def axe_version() -> str:
    """The version axe.min.js announces in its banner (``/*! axe v4.12.1 ...``), or "" if none."""
    found = re.search(r"axe v(\d+\.\d+\.\d+)", axe_source()[:400])
    return found.group(1) if found else ""


@pytest.fixture(scope="session")
def driver() -> Iterator[Driver]:
    """One headless Chromium per test session (per xdist worker), driven by Debian's chromedriver."""
    require_browser()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _fail_install("selenium: pip install -e '.[test]'")
    axe_source()  # a missing axe-core fails here, once, rather than in the middle of a test
    browser, driver_path = find_browser(), chromedriver()
    with tempfile.TemporaryDirectory(prefix="newsletter-a11y-") as profile:
        options = Options()
        options.binary_location = browser
        for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDE},900"):
            options.add_argument(flag)
        # The executable path given here means Selenium Manager never looks for (or downloads) one.
        chrome = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        chrome.set_script_timeout(60)
        try:
            yield chrome
        finally:
            chrome.quit()


def open_page(driver: Driver, url: str, *, width: int) -> None:
    """Load ``url`` in a viewport exactly ``width`` CSS px wide."""
    set_width(driver, width)
    driver.get(url)
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; document.fonts.ready.then(done);"
    )
    inner = driver.execute_script("return window.innerWidth")
    assert inner == width, f"the viewport is {inner} px wide, not {width}"


def open_html(driver: Driver, path: Path, *, width: int) -> None:
    open_page(driver, path.resolve().as_uri(), width=width)


def axe_violations(driver: Driver) -> list[dict[str, Any]]:
    """Run axe-core on the loaded page; every violation, whatever its impact."""
    driver.execute_script(axe_source())
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        axe.run(document, {runOnly: {type: "tag", values: arguments[0]}, resultTypes: ["violations"]})
          .then((r) => done(r.violations), (err) => done({error: String(err)}));
        """,
        list(AXE_TAGS),
    )
    if isinstance(result, dict):
        raise AssertionError(f"axe-core did not run: {result['error']}")
    violations: list[dict[str, Any]] = result
    return violations


def axe_problems(driver: Driver) -> list[str]:
    """The serious and critical axe findings, one line per element."""
    lines = []
    for violation in axe_violations(driver):
        if violation.get("impact") not in AXE_FAILING:
            continue
        for node in violation["nodes"]:
            lines.append(
                f"axe {violation['id']} ({violation['impact']}): {violation['help']} — "
                f"{' '.join(node['target'])}: {node.get('failureSummary', '').strip()}".replace("\n", " ")
            )
    return lines


# One pass over the rendered page; returns a list of problems in words.  arguments[0] is "mail" or
# "page": a mail's body wrapper repeats lang and dir (clients drop <html>), and all its tables are
# layout tables; a web page may have data tables (with <th>) and is checked for form labels.
_CHECKS_JS = r"""
const mode = arguments[0];
const problems = [];
const say = (text) => problems.push(text);
const clip = (text) => (text || "").trim().replace(/\s+/g, " ").slice(0, 60);
const describe = (el) => {
  let name = el.tagName.toLowerCase();
  const classes = typeof el.className === "string" ? el.className.trim().split(/\s+/) : [];
  if (classes[0]) name += "." + classes.join(".");
  const text = clip(el.innerText || el.textContent);
  return text ? `${name} "${text}"` : name;
};
const shown = (el) => {
  if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) return false;
  const box = el.getBoundingClientRect();
  return box.width > 1 && box.height > 1;
};

// lang and dir
const root = document.documentElement;
for (const attr of ["lang", "dir"]) if (!root.getAttribute(attr)) say(`<html> has no ${attr}`);
if (mode === "mail") {
  const wrappers = [...document.body.children].filter((el) => !["SCRIPT", "STYLE"].includes(el.tagName));
  if (!wrappers.length) say("<body> has no wrapper element");
  for (const el of wrappers) {
    for (const attr of ["lang", "dir"]) {
      const value = el.getAttribute(attr), tag = el.tagName.toLowerCase();
      if (!value) say(`the body wrapper ${tag} has no ${attr}`);
      else if (value !== root.getAttribute(attr)) say(`the body wrapper's ${attr} differs from <html>'s`);
    }
  }
}

// layout tables
for (const table of document.querySelectorAll("table")) {
  const layout = mode === "mail" || !table.querySelector("th, caption");
  const role = table.getAttribute("role");
  if (layout && role !== "presentation" && role !== "none") {
    say(`layout table without role="presentation": ${describe(table)}`);
  }
}

// images
for (const img of document.querySelectorAll("img, input[type=image], area")) {
  const what = img.getAttribute("src") || describe(img);
  if (!img.hasAttribute("alt")) say(`image without alt (use alt="" if decorative): ${what}`);
}

// headings: one h1 first, then no level skipped
const headings = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")];
if (!headings.length) say("no headings: the page needs at least an h1");
else if (headings[0].tagName !== "H1") say(`the first heading is ${describe(headings[0])}, not an h1`);
if (headings.filter((h) => h.tagName === "H1").length > 1) say("more than one h1");
let level = 0;
for (const h of headings) {
  const next = Number(h.tagName[1]);
  if (level && next > level + 1) say(`heading level skipped: h${level} then ${describe(h)}`);
  level = next;
}

// link texts that make sense alone
const vague = new Set([
  "click here", "click", "here", "link", "this link", "read more", "more", "learn more", "this", "go",
]);
for (const a of document.querySelectorAll("a[href]")) {
  const text = clip(a.innerText || a.textContent) || clip(a.getAttribute("aria-label"));
  const bare = text.toLowerCase().replace(/[\s.:!…»›→>]+$/u, "");
  if (!text) say(`link without text: ${a.getAttribute("href")}`);
  else if (vague.has(bare)) say(`link text does not make sense alone: "${text}"`);
  else if (/^(https?:\/\/|www\.)\S+$/i.test(text)) say(`link text is a bare URL: "${text}"`);
}

// form fields have a visible <label>
if (mode === "page") {
  for (const field of document.querySelectorAll("input, select, textarea")) {
    if (["hidden", "submit", "button", "reset", "image"].includes(field.type) || !shown(field)) continue;
    const what = field.name || field.id || field.type;
    if (!field.labels || !field.labels.length) say(`form field without a <label>: ${what}`);
  }
}

// contrast (7:1) against the effective background, and type size, for every element with visible text
const rgba = (value) => {
  const m = /^rgba?\(([^)]*)\)$/.exec(value);
  if (!m) return null;
  const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
const luminance = (c) => {
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
};
const hex = (c) => "#" + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
const backdrop = (el) => {
  const layers = [];
  let opacity = 1;
  for (let e = el; e; e = e.parentElement) {
    const style = getComputedStyle(e);
    opacity *= Number(style.opacity);
    if (style.backgroundImage !== "none") {
      return {error: `text over a background image (${describe(e)}): contrast cannot be checked`};
    }
    const colour = rgba(style.backgroundColor);
    if (!colour) return {error: `unreadable background colour ${style.backgroundColor} on ${describe(e)}`};
    if (colour[3] > 0) layers.push(colour);
    if (colour[3] >= 1) break;
  }
  let colour = [255, 255, 255, 1];  // the canvas
  for (const layer of layers.reverse()) colour = over(layer, colour);
  return {colour, opacity};
};
const checked = [];
for (const el of document.body.querySelectorAll("*")) {
  if (["SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE"].includes(el.tagName)) continue;
  const ownText = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  const field = ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(el.tagName) && el.type !== "hidden";
  if (!(ownText || field) || !shown(el)) continue;
  checked.push(el);
  const style = getComputedStyle(el);
  const size = parseFloat(style.fontSize);
  if (size < MIN_FONT_PX) say(`text smaller than ${MIN_FONT_PX}px (${size}px): ${describe(el)}`);
  const back = backdrop(el);
  if (back.error) { say(back.error); continue; }
  const text = rgba(style.color);
  if (!text) { say(`unreadable text colour ${style.color}: ${describe(el)}`); continue; }
  const fg = over([text[0], text[1], text[2], text[3] * back.opacity], back.colour);
  const [hi, lo] = [luminance(fg), luminance(back.colour)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  if (ratio < MIN_CONTRAST) {
    const pair = `${hex(fg)} on ${hex(back.colour)}`;
    say(`contrast ${ratio.toFixed(2)}:1 (${pair}) is below ${MIN_CONTRAST}:1: ${describe(el)}`);
  }
}

// tap targets: 44 px, except links inside running text, whose lines must be well spaced instead
const blockOf = (el) => {
  let e = el.parentElement;
  while (e && getComputedStyle(e).display.startsWith("inline")) e = e.parentElement;
  return e || document.body;
};
const targets = document.querySelectorAll(
  "a[href], button, input:not([type=hidden]), select, textarea, [role=button], "
  + "[tabindex]:not([tabindex='-1'])"
);
let targetCount = 0;
for (const el of targets) {
  if (!shown(el)) continue;
  targetCount += 1;
  const style = getComputedStyle(el);
  const own = clip(el.innerText || el.value || "");
  const block = blockOf(el);
  const inText = style.display === "inline" && clip(block.innerText) !== own;
  if (inText) {
    const size = parseFloat(style.fontSize);
    const spacing = (style.lineHeight === "normal" ? 1.15 * size : parseFloat(style.lineHeight)) / size;
    if (spacing < MIN_INLINE_LINE_HEIGHT) {
      const needs = `(needs ${MIN_INLINE_LINE_HEIGHT})`;
      say(`link inside text with line-height ${spacing.toFixed(2)} ${needs}: ${describe(el)}`);
    }
    continue;
  }
  const box = el.getBoundingClientRect();
  if (box.height < MIN_TARGET_PX - 0.5 || box.width < MIN_TARGET_PX - 0.5) {
    const size = `${Math.round(box.width)}×${Math.round(box.height)}px`;
    say(`tap target ${size}, smaller than ${MIN_TARGET_PX}px: ${describe(el)}`);
  }
}

// no sideways scrolling
const wide = Math.max(document.documentElement.scrollWidth, document.body.scrollWidth);
if (wide > window.innerWidth) {
  say(`the page is ${wide}px wide in a ${window.innerWidth}px window: it scrolls sideways`);
}

return {problems, textElements: checked.length, targets: targetCount};
"""


def _constants() -> str:
    return (
        f"const MIN_CONTRAST = {MIN_CONTRAST}, MIN_FONT_PX = {MIN_FONT_PX}, "
        f"MIN_TARGET_PX = {MIN_TARGET_PX}, MIN_INLINE_LINE_HEIGHT = {MIN_INLINE_LINE_HEIGHT};\n"
    )


def emc_problems(driver: Driver, *, mode: str) -> list[str]:
    """Our checks on the loaded page (mode "mail" or "page"); an empty list when all pass."""
    result = driver.execute_script(_constants() + _CHECKS_JS, mode)
    # A check that looked at nothing proves nothing (e.g. every element hidden by a broken style).
    assert result["textElements"] > 0, "no visible text found on the page"
    problems: list[str] = result["problems"]
    return problems


def scroll_width(driver: Driver) -> int:
    width: int = driver.execute_script(
        "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )
    return width


def text_without_css(driver: Driver) -> tuple[str, list[str]]:
    """The loaded page with styles and images off: its text (images as their alt) and its link texts."""
    text, links = driver.execute_script(
        """
        for (const el of document.querySelectorAll("style, link[rel~=stylesheet]")) el.remove();
        for (const el of document.querySelectorAll("[style]")) el.removeAttribute("style");
        for (const img of document.querySelectorAll("img")) img.replaceWith(img.getAttribute("alt") || "");
        const links = [...document.querySelectorAll("a[href]")].map((a) => a.innerText.trim());
        return [document.body.innerText, links];
        """
    )
    return str(text), [str(link) for link in links]


def keyboard_problems(driver: Driver) -> list[str]:
    """Tab through the loaded page: every control is reached, in reading order, with a visible focus."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    expected = driver.execute_script(
        """
        const sel = "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), "
          + "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
        window.__controls = [...document.querySelectorAll(sel)].filter((el) => el.checkVisibility());
        document.activeElement && document.activeElement.blur();
        return window.__controls.length;
        """
    )
    problems = []
    for step in range(expected):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        state = driver.execute_script(
            """
            const el = document.activeElement, i = window.__controls.indexOf(el), s = getComputedStyle(el);
            const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
            const ring = outline || s.boxShadow !== "none";
            return {index: i, ring: ring, what: el.outerHTML.slice(0, 80)};
            """
        )
        if state["index"] != step:
            problems.append(
                f"Tab #{step + 1} reached {state['what']} — expected control #{step + 1} in page order"
            )
            break
        if not state["ring"]:
            problems.append(f"no visible focus indicator on {state['what']}")
    return problems


def set_width(driver: Driver, width: int) -> None:
    """Make the viewport exactly ``width`` CSS px wide (at scale 1, like a phone at 320)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
    )


def page_problems(driver: Driver) -> list[str]:
    """Every check on the page already loaded (e.g. the answer to a form just sent), at 320 and 600 px."""
    problems = []
    for width in (NARROW, WIDE):
        set_width(driver, width)
        found = axe_problems(driver) + emc_problems(driver, mode="page")
        if width == NARROW:
            found += keyboard_problems(driver)
        problems += [f"[{width}px] {line}" for line in found]
    return problems


def check_page(driver: Driver, url: str) -> list[str]:
    """Every check for a page of `newsletter serve`: axe-core, ours, and the keyboard."""
    open_page(driver, url, width=NARROW)
    return page_problems(driver)


def check_mail(driver: Driver, html_path: Path) -> list[str]:
    """Every check for one HTML mail, at 320 px (a small phone) and 600 px (the design width)."""
    problems = []
    for width in (NARROW, WIDE):
        open_html(driver, html_path, width=width)
        problems += [
            f"[{width}px] {line}" for line in axe_problems(driver) + emc_problems(driver, mode="mail")
        ]
    return problems
