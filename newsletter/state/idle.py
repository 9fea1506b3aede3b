"""A `tick` with nothing to do, answered in the time it takes Python to start.

Cron runs `tick` every few minutes, and almost every run finds nothing due. A full tick that found
nothing to do, and changed nothing, leaves a note in the state folder (``tick-idle.json``): a digest
of everything its answer depended on, the span of time in which that answer holds, and the line it
printed.  The next `tick` in that span whose digest still matches prints the line and exits, without
reading YAML, opening the database or loading the command-line library.

The digest covers the settings (the folder's `.env` merged with the environment), schedule.yaml's
bytes, subscribers.csv's stamp (a newcomer may be owed a reminder that is still open), the state
database with its write-ahead log and outcome journal (any other command's write: a send, an answer, a
console action), the DKIM key file and this program's own files (an upgrade).  The span ends at the
first moment a tick could act differently with all of those unchanged: a reminder's window opens or
closes, a meeting starts, the group's date changes, or an hour has passed (``timing.quiet_until``).
Any doubt — no note, a note unreadable, a digest or a moment that does not match — and the full tick
runs and decides, so the note can only ever repeat an answer the full tick gave.

A group that reads a bounce mailbox never gets a note: its tick reads the mailbox every time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from newsletter.envfile import KNOWN, STATE_DEFAULT, home_folder, merged_env, path_setting

NAME = "tick-idle.json"
FORMAT = 1
#: The longest a note holds: one full tick an hour re-checks whatever the digest cannot see.
LONGEST = dt.timedelta(hours=1)
_PACKAGE = Path(__file__).resolve().parent.parent
#: A stamp in whole seconds (a file system that keeps no finer time) this recent may hide a write.
_COARSE_WINDOW_NS = 2_000_000_000


def _program() -> list[tuple[str, int, int]]:
    """This program's own files (an upgrade or an edit of any of them retires the note): ~1 ms."""
    found = []
    folders = [str(_PACKAGE)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    folders.append(entry.path)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    found.append((entry.path, st.st_size, st.st_mtime_ns))
    return sorted(found)


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _content(path: Path) -> str | None:
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    except OSError:
        return None


class IdleNote:
    """The note of one group folder (``home`` as `--dir` gives it: None for NEWSLETTER_HOME or here)."""

    def __init__(self, home: Path | str | None, environ: Mapping[str, str] | None = None) -> None:
        """OSError, or ConfigError (a ValueError) for an unreadable `.env`: then there is no note."""
        environ = os.environ if environ is None else environ
        self.home = home_folder(home, environ)
        self.environ = environ
        dotenv = self._dotenv()
        # `.env` is in the digest as bytes: python-dotenv only when it may name a file the digest reads
        if b"NEWSLETTER_STATE" in dotenv or b"NEWSLETTER_DKIM_KEY" in dotenv:
            env = merged_env(self.home, environ)
        else:
            env = {k: v for k, v in environ.items() if k in KNOWN}
        self.state = path_setting(env, self.home, "NEWSLETTER_STATE", STATE_DEFAULT)
        key = env.get("NEWSLETTER_DKIM_KEY", "").strip()
        self.dkim_key = path_setting(env, self.home, "NEWSLETTER_DKIM_KEY", "") if key else None
        self.path = self.state.parent / NAME

    def _stamped(self) -> list[Path]:
        """The files whose stamp (not content) is in the digest: the list, the state database with
        SQLite's write-ahead log and the outcome journal (beside the database itself, where SQLite
        puts them when NEWSLETTER_STATE is a symbolic link), the secret and the DKIM key."""
        state = self.state.resolve()
        files = [self.home / "subscribers.csv"]
        files += [state.with_name(state.name + end) for end in ("", "-wal", "-outcomes")]
        files += [self.state.parent / "secret", *([self.dkim_key] if self.dkim_key else [])]
        return files

    def digest(self) -> str:
        """Everything a no-op tick's answer depends on, but the time."""
        dotenv = hashlib.blake2b(self._dotenv(), digest_size=16).hexdigest()
        parts: list[object] = [FORMAT, str(self.home), [(k, self.environ.get(k)) for k in KNOWN], dotenv]
        parts += [_program(), _content(self.home / "schedule.yaml")]
        parts += [_stamp(path) for path in self._stamped()]
        return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()

    def _coarse_and_recent(self, since_ns: int) -> bool:
        """A stamped file changed in the last seconds on a file system that keeps whole seconds: a
        write in the same second, after the tick read the file, would leave the same stamp."""
        for path in self._stamped():
            found = _stamp(path)
            if found and found[2] % 1_000_000_000 == 0 and found[2] > since_ns - _COARSE_WINDOW_NS:
                return True
        return False

    def _dotenv(self) -> bytes:
        path = self.home / ".env"
        return path.read_bytes() if path.is_file() else b""

    def answer(self, at: str | None) -> str | None:
        """The line the full tick would print at ``at`` (or now), or None: then the full tick must run."""
        try:
            note = json.loads(self.path.read_text(encoding="utf-8"))
            if note["format"] != FORMAT or note["digest"] != self.digest():
                return None
            if at:
                from zoneinfo import ZoneInfo

                from newsletter.moments import read_moment

                now = read_moment(at, ZoneInfo(note["tz"]))
            else:
                now = dt.datetime.now(dt.UTC)
            if not dt.datetime.fromisoformat(note["from"]) <= now < dt.datetime.fromisoformat(note["until"]):
                return None
            return str(note["line"])
        except (OSError, ValueError, LookupError, TypeError):  # no note, or not one this tick can trust
            return None

    def remember(
        self, before: str, *, started_ns: int, now: dt.datetime, until: dt.datetime, tz: str, line: str
    ) -> bool:
        """After a full tick that did nothing: leave the note, if that tick changed nothing either
        (its digest ``before``, taken at ``started_ns`` by time.time_ns(), is the digest now).
        False, and no note, otherwise."""
        try:
            unchanged = self.digest() == before and not self._coarse_and_recent(started_ns)
        except (OSError, ValueError):
            unchanged = False
        if not unchanged:
            self.forget()
            return False
        note = {"format": FORMAT, "digest": before, "from": now.isoformat(), "until": until.isoformat()}
        note |= {"tz": tz, "line": line}
        temp = self.path.with_name(f".{NAME}.{os.getpid()}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(note, out)
            os.replace(temp, self.path)
        except OSError:  # a read-only state folder: every tick is a full one, as before
            temp.unlink(missing_ok=True)
            return False
        return True

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def note_for(home: Path | str | None) -> IdleNote | None:
    """The idle note of the group folder, or None when its `.env` cannot be read (settings say why)."""
    try:
        return IdleNote(home)
    except (OSError, ValueError):
        return None


def quick_answer(home: str | None, at: str | None) -> str | None:
    """What `newsletter [--dir HOME] tick [--at AT]` prints, if its idle note answers it."""
    note = note_for(home)
    return note.answer(at) if note else None
