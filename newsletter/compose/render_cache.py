"""The render cache on disk, beside the ledger (``.newsletter/cache/``): work the next run would
only repeat on the same files, so that `check` and a send start fast.

- ``jinja-<digest>/``: the compiled templates, kept by Jinja's own ``FileSystemBytecodeCache``,
  which checks each one against its template's text; the folder is named by a digest of the
  environment's settings and the Jinja and Python versions, so other settings never share it.
- ``templates.json``: small answers about template texts (``analysis``, ``context``).
- ``inline/``: premailer's output for the *shared* render of a mailing, the HTML every member's
  mail is filled in from, with markers where member values go.  A member's own render (a
  personalised template rendered for her, a variant) never comes here: it is inlined in memory.
  Each entry is keyed by a digest of the exact input HTML, premailer's options, the versions of
  premailer, cssutils, cssselect and lxml, and ``FORMAT``, and carries a digest of its own bytes:
  a hit is the same text a fresh transform gives.  At most ``MAX_ENTRIES`` entries and
  ``MAX_BYTES``; the least recently used go first.
- ``styles.json``: premailer's reading of the stylesheet of a shared render (its rules, and the
  declarations of each as premailer merges them: plain text, no member's data), so that a new
  HTML (one meeting edited) is inlined without cssutils loading and parsing the unchanged
  stylesheet.  Keyed by the CSS text, premailer's options, the same library versions as
  ``inline/``, the code of ``inline`` and ``FORMAT``; at most ``MAX_STYLES`` stylesheets
  and a quarter of ``MAX_BYTES``.

Entries are written to a temporary file and renamed into place (mode 0600, folders 0700).  A cache
that cannot be read or written (a read-only folder, a damaged file, a full disk) is passed by,
logged at debug level: it is never a reason to fail.  The folder can be deleted at any time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket

log = logging.getLogger(__name__)

#: Raised when what an entry holds, or how it is keyed, changes: older entries are then not read.
FORMAT = 1
MAX_ENTRIES = 256
MAX_BYTES = 8 * 1024 * 1024
MAX_ANSWERS = 512
MAX_STYLES = 16
_MAGIC = b"newsletter-inline %d\n" % FORMAT
_DIGEST = 32  # hex characters of blake2b(digest_size=16)
_TOUCH_AFTER = 3600.0  # seconds: a hit marks its entry as used again at most once an hour
#: premailer would read these from elsewhere (a linked stylesheet, an @import): never cached.
_READS_ELSEWHERE = re.compile(r"<link\b|@import", re.IGNORECASE)


def folder_for(state_dir: Path) -> Path:
    return state_dir / "cache"


def _private_folder(path: Path) -> None:
    """``path`` and the cache folder above it, readable by their owner alone."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's cache of compiled templates, passed by when its folder cannot be used."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception as err:  # a damaged file: pickle and marshal raise many kinds
            log.debug("render cache: compiled template not read (%s)", err)
            bucket.reset()
        if bucket.code is not None and not isinstance(bucket.code, types.CodeType):
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            _private_folder(Path(self.directory))
            super().dump_bytecode(bucket)
        except OSError as err:
            log.debug("render cache: compiled template not kept (%s)", err)


def bytecode_cache(cache_dir: Path, settings: str) -> jinja2.BytecodeCache:
    """Jinja's cache of compiled templates in ``cache_dir``, for an environment whose settings
    (everything the compiled code depends on besides a template's text) ``settings`` describes."""
    digest = hashlib.blake2b(
        f"{FORMAT}|{jinja2.__version__}|{sys.version_info[:2]}|{settings}".encode(), digest_size=8
    ).hexdigest()
    return _BytecodeCache(str(cache_dir / f"jinja-{digest}"), "%s.cache")


@functools.cache
def library_versions(*names: str) -> str:
    """The installed versions of libraries an answer depends on, read without importing them
    (the names of their ``.dist-info`` folders, else the size and time of their files)."""
    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec and spec.origin else None
        if origin is None:
            found.append(f"{name}:none")
            continue
        site = origin.parent.parent
        dists = sorted(
            p.name for p in site.glob(f"{name}-*.dist-info") if p.name.lower().startswith(f"{name}-")
        )
        if dists:
            found.append(",".join(dists))
        else:
            stat = origin.stat()
            found.append(f"{origin}:{stat.st_size}:{stat.st_mtime_ns}")
    return "|".join(found)


#: What the inlined HTML depends on besides its input and premailer's options.
INLINING = ("premailer", "cssutils", "cssselect", "lxml")


class InlineCache:
    """premailer's output for shared renders, in ``folder`` (see the module's docstring)."""

    def __init__(self, folder: Path, options: str) -> None:
        self.folder = folder
        self.options = options

    def key(self, html: str) -> str:
        return digest(library_versions(*INLINING), self.options, html)

    def inlined(self, html: str, transform: Callable[[str], str]) -> str:
        """``transform(html)``, from the cache when it holds it; kept there when computed."""
        if _READS_ELSEWHERE.search(html):
            return transform(html)
        key = self.key(html)
        found = self._read(key)
        if found is None:
            found = transform(html)
            self._write(key, found)
        return found

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.html"

    def _read(self, key: str) -> str | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as err:
            log.debug("render cache: %s not read (%s)", path.name, err)
            return None
        head = len(_MAGIC)
        payload = data[head + _DIGEST + 1 :]
        if (
            data[:head] != _MAGIC
            or data[head + _DIGEST : head + _DIGEST + 1] != b"\n"
            or data[head : head + _DIGEST] != _checksum(payload)
        ):
            log.debug("render cache: %s is damaged, computed anew", path.name)
            return None
        try:
            text = payload.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
        self._touch(path)
        return text

    def _touch(self, path: Path) -> None:
        """Mark an entry as used (at most once an hour: a hit should not cost a disk write)."""
        try:
            now = time.time()
            if now - path.stat().st_mtime > _TOUCH_AFTER:
                os.utime(path, (now, now))
        except OSError:
            pass

    def _write(self, key: str, text: str) -> None:
        payload = text.encode("utf-8", "surrogatepass")
        if write_atomically(self._path(key), b"".join((_MAGIC, _checksum(payload), b"\n", payload))):
            try:
                self._prune()
            except OSError as err:
                log.debug("render cache: not pruned (%s)", err)

    def _prune(self) -> None:
        """The least recently used entries removed beyond ``MAX_ENTRIES`` or ``MAX_BYTES``."""
        entries: list[tuple[float, int, Path]] = []
        for path in self.folder.glob("*.html"):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in entries)
        if len(entries) <= MAX_ENTRIES and total <= MAX_BYTES:
            return
        entries.sort()
        while entries and (len(entries) > MAX_ENTRIES * 3 // 4 or total > MAX_BYTES * 3 // 4):
            _, size, path = entries.pop(0)
            _remove(path)
            total -= size


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).hexdigest().encode()


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


class AnswerStore:
    """Small answers about template texts (see ``analysis``), by key, in one JSON file: the most
    recent ``max_answers``, at most ``max_bytes`` of JSON.  Read once per process; written through
    when an answer is added."""

    def __init__(self, path: Path, *, max_answers: int = MAX_ANSWERS, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.max_answers = max_answers
        self.max_bytes = max_bytes
        self._data: dict[str, Any] | None = None

    def _loaded(self) -> dict[str, Any]:
        if self._data is None:
            self._data = {}
            try:
                found = json.loads(self.path.read_bytes())
                if isinstance(found, dict) and found.get("format") == FORMAT:
                    self._data = dict(found.get("answers") or {})
            except FileNotFoundError:
                pass
            except (OSError, ValueError, TypeError, AttributeError) as err:
                log.debug("render cache: %s not read (%s)", self.path.name, err)
        return self._data

    def get(self, key: str) -> Any:
        return self._loaded().get(key)

    def put(self, key: str, value: Any) -> None:
        """``value`` kept under ``key`` (a value of more than ``max_bytes`` alone is not kept)."""
        if len(json.dumps(value)) > self.max_bytes:
            return
        data = self._loaded()
        data.pop(key, None)
        data[key] = value
        while len(data) > self.max_answers:
            del data[next(iter(data))]
        payload = json.dumps({"format": FORMAT, "answers": data}).encode()
        while len(payload) > self.max_bytes and len(data) > 1:
            del data[next(iter(data))]
            payload = json.dumps({"format": FORMAT, "answers": data}).encode()
        write_atomically(self.path, payload)


@functools.cache
def answer_store(cache_dir: Path) -> AnswerStore:
    return AnswerStore(cache_dir / "templates.json")


@functools.cache
def style_store(cache_dir: Path) -> AnswerStore:
    """premailer's reading of the group's stylesheets (see ``inline``): a few, read only when
    premailer runs, so apart from the answers every `check` reads."""
    return AnswerStore(cache_dir / "styles.json", max_answers=MAX_STYLES, max_bytes=MAX_BYTES // 4)


def digest(*parts: object) -> str:
    """A key for the render cache: blake2b of the parts (each as text) and ``FORMAT``."""
    found = hashlib.blake2b(digest_size=16)
    for part in (FORMAT, *parts):
        found.update(str(part).encode("utf-8", "surrogatepass"))
        found.update(b"\0")
    return found.hexdigest()


@functools.cache
def code_digest(path: str) -> str:
    """A digest of a module's source: what its cached answers were computed by.  Modules take it
    when they are imported (a daemon running on after an upgrade keeps its old code, and its old
    digest).  A source that cannot be read gets a key of this process alone: nothing shared."""
    try:
        return hashlib.blake2b(Path(path).read_bytes(), digest_size=8).hexdigest()
    except OSError:
        return f"unread-{os.getpid()}-{secrets.token_hex(8)}"


def write_atomically(path: Path, data: bytes) -> bool:
    """``data`` as the file ``path`` (temporary file, then renamed: never half a file), mode 0600;
    False when it could not be written."""
    tmp = None
    try:
        _private_folder(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        tmp = None
        return True
    except OSError as err:
        log.debug("render cache: %s not kept (%s)", path.name, err)
        return False
    finally:
        if tmp is not None:
            _remove(Path(tmp))
