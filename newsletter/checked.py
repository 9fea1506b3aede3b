"""What `check` worked out about the group's files, kept for the next `check` on the same bytes.

`check` reads `schedule.yaml` (with ruamel.yaml, its addresses with email_validator) and every row
of `subscribers.csv` again on each run, although an organiser usually changed one file, or none.
Both answers are pure functions of the file's bytes and of this program, so they are kept in the
render cache (``.newsletter/cache/checked/``), keyed by a digest of those bytes, the code of
``inputs/`` and ``model.py`` as this process loaded it, the versions of the libraries that read
them, and for the schedule the day (a rule with no ``from:`` starts today).  A file that did not
read cleanly is never kept; `send` and `tick` always read the files themselves.

- the schedule (the ``Schedule`` and the article names it gives) and each article read cleanly,
  pickled, and read back through an unpickler that makes only the plain data of ``model`` and
  ``datetime``/``zoneinfo`` values;
- the list: the number of members and the problems and warnings found, each a file, a line and a
  sentence — never a member's address or name (no message of the program holds one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import pickle
from pathlib import Path
from typing import Any

from newsletter.compose.render_cache import (
    code_digest,
    digest,
    folder_for,
    library_versions,
    write_atomically,
)
from newsletter.errors import Problem
from newsletter.model import Article, Schedule

log = logging.getLogger(__name__)

FORMAT = 1
KEPT = 64  # answers kept in all: the files as they are now, and a few versions back
_HERE = Path(__file__).resolve().parent
#: The code that reads the files, as this process loaded it.
_CODE = tuple(
    code_digest(str(path)) for path in sorted([*(_HERE / "inputs").glob("*.py"), _HERE / "model.py"])
)
_READERS = ("ruamel", "email_validator", "dateutil")
#: What a kept schedule may be made of: the model's plain data and the values inside it.
_ALLOWED = {
    "datetime": {"date", "time", "datetime", "timedelta", "timezone"},
    "zoneinfo": {"ZoneInfo"},
    "zoneinfo._zoneinfo": {"ZoneInfo"},
    "copyreg": {"_reconstructor"},
    "builtins": {"object", "frozenset", "set", "tuple", "list", "dict"},
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "newsletter.model" or name in _ALLOWED.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a schedule")


def _file_digest(path: Path) -> str | None:
    """The file's bytes, digested a megabyte at a time (a list of a million members stays small)."""
    found = hashlib.blake2b(digest_size=16)
    try:
        with path.open("rb") as data:
            while chunk := data.read(1 << 20):
                found.update(chunk)
    except OSError:
        return None
    return found.hexdigest()


class Checked:
    """The answers kept for one group's state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = folder_for(state_dir) / "checked"

    def _key(self, what: str, path: Path, *more: object) -> str | None:
        found = _file_digest(path)
        if found is None:
            return None
        return digest(what, FORMAT, found, *_CODE, library_versions(*_READERS), *more)

    def _read(self, key: str | None) -> bytes | None:
        if key is None:
            return None
        try:
            data = (self.folder / key).read_bytes()
        except OSError:
            return None
        head, _, payload = data.partition(b"\n")
        if head != hashlib.blake2b(payload, digest_size=16).hexdigest().encode():
            log.debug("render cache: %s is damaged, read anew", key)
            return None
        return payload

    def _write(self, key: str, payload: bytes) -> None:
        check = hashlib.blake2b(payload, digest_size=16).hexdigest().encode()
        if write_atomically(self.folder / key, check + b"\n" + payload):
            self._prune()

    def _prune(self) -> None:
        """The oldest answers dropped beyond ``KEPT`` (each edit of a file leaves a new one)."""
        try:
            entries = sorted((entry.stat().st_mtime_ns, entry) for entry in self.folder.iterdir())
            for _, entry in entries[: max(0, len(entries) - KEPT)]:
                entry.unlink(missing_ok=True)
        except OSError as err:
            log.debug("render cache: checked answers not pruned (%s)", err)

    def key_of_schedule(self, path: Path) -> str | None:
        return self._key("schedule", path, dt.date.today().isoformat())

    def key_of_members(self, path: Path) -> str | None:
        return self._key("members", path)

    def _unpickled(self, key: str | None) -> Any:
        payload = self._read(key)
        if payload is None:
            return None
        try:
            return _Unpickler(io.BytesIO(payload)).load()
        except Exception as err:  # a damaged or foreign entry: the file is read instead
            log.debug("render cache: kept answer not read (%s)", err)
            return None

    def schedule(self, key: str | None) -> tuple[Schedule, list[tuple[str, int | None]]] | None:
        """The schedule and its article names as the last `check` read the bytes ``key`` names
        (``key_of_schedule``) today, or None."""
        found = self._unpickled(key)
        if not (isinstance(found, tuple) and len(found) == 2):
            return None
        schedule, refs = found
        return (schedule, refs) if isinstance(schedule, Schedule) and isinstance(refs, list) else None

    def key_of_article(self, content_dir: Path, slug: str) -> str | None:
        if not slug.replace("-", "").replace("_", "").isalnum():  # a name load_article refuses
            return None
        return self._key("article", content_dir / "articles" / f"{slug}.md", content_dir.name, slug)

    def article(self, key: str | None) -> Article | None:
        """The article as the last `check` read the same file (``key_of_article``), or None."""
        found = self._unpickled(key)
        return found if isinstance(found, Article) else None

    def keep_article(self, key: str, article: Article) -> None:
        self._write(key, pickle.dumps(article, protocol=pickle.HIGHEST_PROTOCOL))

    def keep_schedule(self, key: str, schedule: Schedule, refs: list[tuple[str, int | None]]) -> None:
        """Keep what was read from the bytes ``key`` names (the key taken before and after reading)."""
        self._write(key, pickle.dumps((schedule, refs), protocol=pickle.HIGHEST_PROTOCOL))

    def members(self, key: str | None) -> tuple[int, list[Problem], list[Problem], tuple[str, ...]] | None:
        """(members, problems, warnings, columns) as the last `check` found them in these bytes."""
        payload = self._read(key)
        if payload is None:
            return None
        try:
            found = json.loads(payload)
            count = found["members"]
            problems = [Problem(*p) for p in found["problems"]]
            warnings = [Problem(*p) for p in found["warnings"]]
            columns = tuple(str(name) for name in found["columns"])
        except (ValueError, TypeError, KeyError):
            return None
        return (count, problems, warnings, columns) if type(count) is int else None

    def keep_members(
        self, key: str, count: int, problems: list[Problem], warnings: list[Problem], columns: tuple[str, ...]
    ) -> None:
        def rows(found: list[Problem]) -> list[list[Any]]:
            return [[p.path, p.line, p.message, p.hint] for p in found]

        answer = {"members": count, "problems": rows(problems), "warnings": rows(warnings)}
        answer["columns"] = list(columns)  # the header's names (a template's member.<column>)
        self._write(key, json.dumps(answer).encode())
