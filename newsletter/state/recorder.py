"""A send run's results as they come: each appended to the outcome journal at once, all of them folded
into the ledger every ``FOLD_EVERY`` results or ``FOLD_SECONDS`` after the oldest not yet folded.

The journal line is what makes a result safe from a crash; the fold only makes it visible to
`status`, the console and the bounce reader, so it can wait a little and take many rows at once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from newsletter.model import DeliveryStatus as Status
from newsletter.state.deliveries import DeliveryTables, Result
from newsletter.state.journal import Header, Journal, journal_path

FOLD_EVERY = 1000  # results: one transaction for this many messages, at most
FOLD_SECONDS = 5.0  # how long a result may wait to be folded (how far `status` may lag behind)


class Recorder:
    def __init__(self, ledger: DeliveryTables, journal: Journal, clock: Callable[[], dt.datetime]) -> None:
        self.ledger, self.journal, self.clock = ledger, journal, clock
        self.header: Header | None = None
        self.pending: list[Result] = []
        self.oldest = 0.0  # time.monotonic() of the first result not folded yet

    def begin(self, header: Header) -> None:
        """Results from here on are ``header``'s (its claim is committed)."""
        self.header = header
        self.journal.start(header)

    def add(self, result: Result) -> None:
        """Keep ``result``: in the journal before this returns, in the ledger at the next fold."""
        assert self.header is not None, "begin() first"
        self.journal.append(result.dump())
        if not self.pending:
            self.oldest = time.monotonic()
        self.pending.append(result)
        if len(self.pending) >= FOLD_EVERY or time.monotonic() - self.oldest >= FOLD_SECONDS:
            self.fold()

    def fold(self, unclaim: Mapping[str, Status | None] | None = None, *, last: bool = False) -> None:
        """Everything not folded yet in one transaction (with ``unclaim``: see DeliveryTables.fold);
        the journal then starts again, or, ``last``, is left empty."""
        if self.header is None:
            return
        if self.pending or unclaim:
            self.ledger.fold(
                self.header, self.pending, now=self.clock(), folded=self.journal.folded, unclaim=unclaim
            )
        self.pending = []
        if last:
            self.journal.clear()
        else:
            self.journal.start(self.header)


@contextmanager
def recording(ledger: DeliveryTables, clock: Callable[[], dt.datetime]) -> Iterator[Recorder]:
    """The journal, locked for one send run, with whatever a killed send left in it folded first."""
    # Readable by whom the state database is (SQLite gives its -wal file the database's mode too).
    mode = ledger.path.stat().st_mode & 0o666
    path = journal_path(ledger.path)
    journal = Journal.lock(path, wait=True, mode=mode)
    assert journal is not None  # waiting, and creating it: never None
    with journal:
        ledger.fold_leftover(journal)
        yield Recorder(ledger, journal, clock)
        # All folded: no file is left beside the database (one left over means a send was stopped).
        # Only the sender removes it, under the send lock: a process folding a killed send's journal
        # never does, so a send that has just opened the file never writes to one that is gone.
        if journal.end == 0:
            path.unlink(missing_ok=True)
