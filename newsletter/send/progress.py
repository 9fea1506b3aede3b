"""Progress of a long send: a bar on a terminal, a log line every few seconds under cron or systemd."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter

log = logging.getLogger("newsletter.progress")


class Progress:
    """Told about each outcome; the CLI shows a bar or log lines, tests ignore it."""

    def start(self, total: int | None) -> None: ...
    def advance(self, outcome: str) -> None: ...
    def finish(self) -> None: ...


class LogProgress(Progress):
    """Plain periodic lines, for logs (no terminal control characters)."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.counts: Counter[str] = Counter()
        self.started = self.last = time.monotonic()

    def start(self, total: int | None) -> None:
        self.started = self.last = time.monotonic()

    def advance(self, outcome: str) -> None:
        self.counts[outcome] += 1
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            done = sum(self.counts.values())
            rate = done / max(now - self.started, 1e-9)
            log.warning("progress: %d handled (%s), %.0f/s", done, _summary(self.counts), rate)

    def finish(self) -> None:
        return None


class BarProgress(Progress):
    """tqdm's bar: count, rate and time left."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(unit="msg", file=sys.stderr, dynamic_ncols=True, leave=False, mininterval=0.25)
        self.counts: Counter[str] = Counter()

    def start(self, total: int | None) -> None:
        self.bar.reset(total=total)

    def advance(self, outcome: str) -> None:
        self.counts[outcome] += 1
        self.bar.set_postfix_str(_summary(self.counts), refresh=False)
        self.bar.update(1)

    def finish(self) -> None:
        self.bar.close()


def _summary(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def for_terminal() -> Progress:
    return BarProgress() if sys.stderr.isatty() else LogProgress()
