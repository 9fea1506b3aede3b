"""`preview --screenshot`: a PNG of a mail as headless Chromium shows it, at a given screen width.

Chromium is driven over its DevTools pipe (``--remote-debugging-pipe``: JSON messages on file
descriptors 3 and 4), so this needs Debian's ``chromium`` and nothing else: no chromedriver, no
Python package, no browser download.  The page is laid out at the asked width, its full height is
measured, and the whole mail is captured in one image.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from newsletter.errors import NewsletterError

#: Where Debian puts the browser first, then the names it goes by on PATH elsewhere.
BROWSERS = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Quiet, private, offline: no first-run pages, no updates, no phoning home.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
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
TIMEOUT = 30.0


def find_browser() -> str:
    """The Chromium executable, or an error that says how to install it."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise NewsletterError(
        "no Chromium browser found for --screenshot (looked for /usr/bin/chromium, chromium, "
        "chromium-browser, google-chrome) — install Debian's chromium: apt-get install chromium"
    )


class _Pipe:
    """The DevTools protocol over Chromium's pipe: one JSON message per NUL-terminated chunk."""

    def __init__(self, write_fd: int, read_fd: int, exit_code: Callable[[float], int | None]) -> None:
        self._write_fd = write_fd
        self._read_fd = read_fd
        self._exit_code = exit_code
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> None:
        """Send a command without waiting for its answer."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._write_fd, data) :]
        except BrokenPipeError as err:
            raise self._stopped() from err

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        self.send(method, session, **params)
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise NewsletterError(f"Chromium refused {method}: {reply['error'].get('message')}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self.events.append(reply)

    def wait_for(self, event: str, session: str) -> None:
        while True:
            for index, seen in enumerate(self.events):
                if seen.get("method") == event and seen.get("sessionId") == session:
                    del self.events[: index + 1]
                    return
            self.events.append(self._receive())

    def _stopped(self) -> NewsletterError:
        # The pipe closes a moment before the process can be reaped: wait a little for its exit code.
        code = self._exit_code(5.0)
        return NewsletterError(f"headless Chromium stopped (exit code {code}) while taking the screenshot")

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._read_fd], [], [], max(left, 0))
            if not ready:
                raise NewsletterError("headless Chromium timed out while taking the screenshot")
            chunk = os.read(self._read_fd, 1 << 20)
            if not chunk:
                raise self._stopped()
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message


def capture(html_path: Path, png_path: Path, *, width: int) -> None:
    """Save a PNG of the whole page at ``html_path`` as a screen ``width`` px wide shows it."""
    if not 120 <= width <= 4000:
        raise NewsletterError(f"--width {width} is not a screen width — use e.g. 320 (a phone) or 600")
    browser = find_browser()
    with tempfile.TemporaryDirectory(prefix="newsletter-chromium-") as profile:
        command = [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},800",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        with _Browser(command) as pipe:
            png = _shoot(pipe, html_path.resolve().as_uri(), width)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.write_bytes(png)


class _Browser:
    """Chromium started with the pipe's ends as its fds 3 (commands in) and 4 (answers out)."""

    def __init__(self, command: list[str]) -> None:
        self._command = command
        self._pid = 0
        self._status: int | None = None
        self._fds: list[int] = []
        self._pipe: _Pipe | None = None

    def __enter__(self) -> _Pipe:
        # Fresh descriptors above 9 (close-on-exec), so moving them to 3 and 4 never overwrites one.
        ends = [os.pipe(), os.pipe()]
        for fd in (*ends[0], *ends[1]):
            self._fds.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
            os.close(fd)
        to_child_r, to_child_w, from_child_r, from_child_w = self._fds
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_DUP2, 1, 2),
            (os.POSIX_SPAWN_DUP2, to_child_r, 3),
            (os.POSIX_SPAWN_DUP2, from_child_w, 4),
        ]
        try:
            self._pid = os.posix_spawn(self._command[0], self._command, os.environ, file_actions=actions)
        except OSError as err:
            self._close()
            raise NewsletterError(f"could not start {self._command[0]}: {err}") from err
        # Only the child keeps its ends: a crash then reads as end of file here, not as a hang.
        for fd in (to_child_r, from_child_w):
            os.close(fd)
            self._fds.remove(fd)
        self._pipe = _Pipe(to_child_w, from_child_r, self.exit_code)
        return self._pipe

    def exit_code(self, wait: float = 0.0) -> int | None:
        """The browser's exit code once it has stopped (waiting up to ``wait`` seconds), else None."""
        self._wait(wait)
        return self._status

    def _poll(self) -> int | None:
        if self._status is None and self._pid:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
            if pid:
                self._status = os.waitstatus_to_exitcode(status)
        return self._status

    def __exit__(self, *exc: object) -> None:
        try:
            if self._pid and self._pipe:
                # A clean exit takes the helper processes down with the browser.
                if self._poll() is None:
                    with contextlib.suppress(NewsletterError):
                        self._pipe.send("Browser.close")
                if not self._wait(5.0):
                    os.kill(self._pid, signal.SIGTERM)
                    if not self._wait(5.0):
                        os.kill(self._pid, signal.SIGKILL)
                        self._status = os.waitstatus_to_exitcode(os.waitpid(self._pid, 0)[1])
        finally:
            self._close()

    def _wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self._poll() is None:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


def _shoot(pipe: _Pipe, url: str, width: int) -> bytes:
    target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
    session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    pipe.call("Page.enable", session)
    # A phone-like viewport of exactly `width` CSS px at scale 1, so the PNG is `width` px wide.
    metrics = {"width": width, "deviceScaleFactor": 1, "mobile": False}
    # A short viewport first, so the measured height is the mail's own, not the window's.
    pipe.call("Emulation.setDeviceMetricsOverride", session, height=100, **metrics)
    navigated = pipe.call("Page.navigate", session, url=url)
    if navigated.get("errorText"):
        raise NewsletterError(f"Chromium could not open {url}: {navigated['errorText']}")
    pipe.wait_for("Page.loadEventFired", session)
    measured = pipe.call(
        "Runtime.evaluate",
        session,
        expression="document.fonts.ready.then(() => Math.ceil(document.documentElement.scrollHeight))",
        awaitPromise=True,
        returnByValue=True,
    )
    height = min(max(int(measured["result"]["value"]), 1), MAX_HEIGHT)
    pipe.call("Emulation.setDeviceMetricsOverride", session, height=height, **metrics)
    shot = pipe.call(
        "Page.captureScreenshot",
        session,
        format="png",
        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        captureBeyondViewport=True,
    )
    return base64.b64decode(shot["data"])
