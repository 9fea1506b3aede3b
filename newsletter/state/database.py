"""The state database's connection: SQLite in WAL mode, brought to the schema this code knows on open."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from newsletter.errors import ConfigError
from newsletter.state.migrations import migrate


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


class Database:
    """One connection (autocommit: every write goes through ``transaction``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        except (sqlite3.Error, OSError) as err:
            raise _cannot_open(path, err) from err
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA temp_store=MEMORY")  # sorts and IN lists: no temporary files
            self.db.execute("PRAGMA wal_autocheckpoint=4000")
            migrate(self.db, path)
        except (sqlite3.Error, OSError) as err:
            self.db.close()
            raise _cannot_open(path, err) from err
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


def _cannot_open(path: Path, err: Exception) -> ConfigError:
    return ConfigError(
        f"{path}: cannot open the state database ({err}) — check NEWSLETTER_STATE and that the folder "
        "is writable"
    )
