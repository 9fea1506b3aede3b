"""`preview --screenshot`: a PNG of a mail as headless Chromium shows it, at a given screen width.

Chromium's own command line does the work, so this needs Debian's ``chromium`` and nothing else: no
chromedriver, no Python package, no browser download.  Two short runs of the browser:

1. ``--dump-dom`` of a small page that shows the mail in a frame exactly ``width`` px wide and writes
   the mail's full height into its own title once the mail has loaded;
2. ``--screenshot --window-size=WIDTH,HEIGHT`` of the mail itself, so the one image is the whole mail.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
from pathlib import Path

from newsletter.errors import NewsletterError

#: Where Debian puts the browser first, then the names it goes by on PATH elsewhere.
BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Headless, and working as root in a container (no sandbox, no GPU, a small /dev/shm); quiet,
#: private and offline: no first-run pages, no updates, no phoning home.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
)
#: Tall mails still make one image; beyond this the page is cut (Chromium's own texture limit is 16384).
MAX_HEIGHT = 16000
#: Seconds one run of the browser may take (a cold start on a busy machine takes a few).
TIMEOUT = 60.0
INSTALL = "install Debian's chromium: apt-get install chromium"

# The measuring page: the mail in a frame `width` px wide and 100 px tall (so the height measured is
# the mail's own, not the window's), its scroll height written to the title once it has loaded.
_PROBE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>measuring</title>
<style>
html, body {{ margin: 0; }}
iframe {{ display: block; border: 0; width: {width}px; height: 100px; }}
</style>
</head><body><iframe id="mail" scrolling="no" src="{url}"></iframe>
<script>
document.getElementById("mail").addEventListener("load", (event) => {{
  const doc = event.target.contentDocument;
  const height = doc ? Math.ceil(doc.documentElement.scrollHeight) : "unknown";
  document.title = "newsletter-height:" + height;
}});
</script></body></html>
"""
_HEIGHT = re.compile(r"<title>newsletter-height:(\d+)</title>")


def find_browser() -> str:
    """The Chromium executable, or an error that says how to install it."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise NewsletterError(
        "no Chromium browser found for --screenshot (looked for /usr/bin/chromium, chromium, "
        f"chromium-browser, google-chrome) — {INSTALL}"
    )


def capture(html_path: Path, png_path: Path, *, width: int) -> None:
    """Save a PNG of the whole page at ``html_path`` as a screen ``width`` px wide shows it."""
    if not 120 <= width <= 4000:
        raise NewsletterError(f"--width {width} is not a screen width — use e.g. 320 (a phone) or 600")
    browser = find_browser()
    url = html_path.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="newsletter-chromium-") as work:
        folder = Path(work)
        probe = folder / "measure.html"
        probe.write_text(_PROBE.format(width=width, url=html.escape(url)), encoding="utf-8")
        # The probe reads the framed mail's document: both are files, so allow file:// to see file://.
        dom = _run(
            browser,
            folder / "profile-measure",
            f"--window-size={width},100",
            "--allow-file-access-from-files",
            "--dump-dom",
            probe.as_uri(),
        )
        found = _HEIGHT.search(dom)
        if found is None:
            raise NewsletterError(f"headless Chromium could not open {html_path} to measure its height")
        height = min(max(int(found.group(1)), 1), MAX_HEIGHT)
        shot = folder / "shot.png"
        _run(
            browser,
            folder / "profile-shoot",
            f"--window-size={width},{height}",
            f"--screenshot={shot}",
            url,
        )
        png = shot.read_bytes() if shot.is_file() else b""
    size = _png_size(png)
    if size is None:
        raise NewsletterError("headless Chromium exited without saving the screenshot")
    if size[0] != width:
        raise NewsletterError(f"headless Chromium made a screenshot {size[0]} px wide instead of {width}")
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.write_bytes(png)


def _run(browser: str, profile: Path, *args: str) -> str:
    """Run the browser once with a fresh profile; its standard output, or an error if it failed."""
    command = [browser, *FLAGS, f"--user-data-dir={profile}", *args]
    # Files, not pipes: a helper that outlives the browser (crashpad) must not keep us waiting.
    out_path, err_path = profile.with_suffix(".out"), profile.with_suffix(".err")
    with out_path.open("wb") as out, err_path.open("wb") as err:
        try:
            # A session of its own, so a browser that hangs is stopped with all its helper processes.
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
            )
        except OSError as error:
            raise NewsletterError(f"could not start {browser}: {error} — {INSTALL}") from error
        try:
            code = process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise NewsletterError(
                f"headless Chromium timed out after {TIMEOUT:.0f} s while taking the screenshot"
            ) from None
    if code != 0:
        # The last line of its log, leaving out the noise of a machine without D-Bus (containers).
        log = err_path.read_text(encoding="utf-8", errors="replace").splitlines()
        lines = [line for line in log if line.strip() and "dbus" not in line.lower()]
        last = f": {lines[-1].strip()}" if lines else ""
        how = f"exit code {code}" if code > 0 else f"killed by {_signal_name(-code)}"
        raise NewsletterError(
            f"headless Chromium stopped ({how}) while taking the screenshot{last} — check that "
            f"`{browser} --headless --no-sandbox --dump-dom about:blank` works, or reinstall it: "
            "apt-get install --reinstall chromium"
        )
    return out_path.read_text(encoding="utf-8", errors="replace")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _png_size(data: bytes) -> tuple[int, int] | None:
    """A PNG's width and height from its header, or None if ``data`` is not a PNG."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
