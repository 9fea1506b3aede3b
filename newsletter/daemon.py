"""`newsletter run`: the daemon. APScheduler fires a tick at each reminder's due time, a catch-up tick at
start and every few minutes, and re-reads schedule.yaml when it changes; SIGTERM stops it cleanly.

APScheduler only decides when; ``jobs.tick`` decides what (and takes the send lock).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from newsletter.errors import DataError
from newsletter.jobs import tick
from newsletter.project import Project
from newsletter.timing import plan

log = logging.getLogger("newsletter.daemon")
BOUNCES_EVERY = 600.0  # seconds between reads of the bounce mailbox


class Daemon:
    """The scheduler's jobs and the state they share: the last good project and schedule.yaml's mtime."""

    def __init__(self, load: Callable[[], Project], *, poll: float, retry: float) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.load, self.poll, self.retry = load, poll, retry
        self.project = load()
        self.mtime: float | None = None
        self.stop = threading.Event()
        self.scheduler = BackgroundScheduler(
            timezone=dt.UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        )

    @staticmethod
    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def tick(self) -> None:
        try:
            result = tick(self.project, now=self.now(), clock=self.now, stop=self.stop)
        except Exception:
            log.exception("tick failed; will try again at the next one")
            return
        if result.busy:
            log.info("another send is running; skipping this tick")
        for line in result.lines:
            log.info("%s", line)

    def reschedule(self) -> int:
        """One job per reminder still to come; returns how many."""
        from apscheduler.triggers.date import DateTrigger

        for job in self.scheduler.get_jobs():
            if job.id.startswith("due:"):
                job.remove()
        count = 0
        for due in plan(self.project.schedule):
            if due.at > self.now():
                # misfire_grace_time=None: a job that fires late (suspend, busy) still runs; tick
                # itself decides whether the reminder's window is still open.
                self.scheduler.add_job(
                    self.tick, DateTrigger(run_date=due.at), id=f"due:{due.id}", replace_existing=True
                )
                count += 1
        return count

    def watch(self) -> None:
        """schedule.yaml edited: reload it (keeping the last good one if it has mistakes) and tick."""
        try:
            mtime = (self.project.home / "schedule.yaml").stat().st_mtime
        except OSError:
            return
        if mtime == self.mtime:
            return
        first, self.mtime = self.mtime is None, mtime
        if first:
            return
        try:
            self.project = self.load()
        except DataError as err:
            log.error("schedule.yaml changed but has mistakes; keeping the last good schedule:\n%s", err)
            return
        log.info("schedule.yaml changed: %d reminders still to send, rescheduled", self.reschedule())
        self.tick()

    def bounces(self) -> None:
        """Between due times too: a member whose mailbox is gone stops getting mail sooner."""
        from newsletter.jobs import read_bounces

        for line in read_bounces(self.project, now=self.now()):
            log.info("%s", line)

    def on_signal(self, signum: int, frame: object) -> None:
        log.info("stopping (signal %d): finishing the message in flight", signum)
        self.stop.set()


def run_daemon(load: Callable[[], Project], *, poll: float = 30.0, retry: float = 300.0) -> int:
    """Run until SIGTERM or SIGINT: a tick at each due time, a catch-up tick at start and every
    ``retry`` seconds, schedule.yaml checked for edits every ``poll`` seconds."""
    import signal

    daemon = Daemon(load, poll=poll, retry=retry)
    signal.signal(signal.SIGTERM, daemon.on_signal)
    signal.signal(signal.SIGINT, daemon.on_signal)
    daemon.watch()
    scheduled = daemon.reschedule()
    daemon.scheduler.add_job(daemon.tick, "interval", seconds=retry, id="retry")
    daemon.scheduler.add_job(daemon.watch, "interval", seconds=poll, id="watch")
    if daemon.project.settings.bounce_mailbox is not None:
        daemon.scheduler.add_job(daemon.bounces, "interval", seconds=BOUNCES_EVERY, id="bounces")
    daemon.scheduler.start()
    log.info("newsletter daemon started: %d reminders still to send", scheduled)
    daemon.scheduler.add_job(daemon.tick, id="catch-up")  # whatever fell due while it was down
    daemon.stop.wait()
    daemon.scheduler.shutdown(wait=True)
    log.info("newsletter daemon stopped")
    return 0
