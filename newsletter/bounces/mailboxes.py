"""The bounce mailbox: an IMAP folder (imap-tools) or a local Maildir (Python's ``mailbox``).

Every message in the folder is new: what has been read is moved out, to ``newsletter-processed`` or
``newsletter-unrecognised`` (Maildir subfolders ``.newsletter-processed`` …), never deleted (listmonk
deletes the whole bounce mailbox: #492).  The caller moves a message only after its count is committed,
so a crash leaves it in place to be read again, and the ledger counts it once.  The IMAP password goes
to the server and nowhere else: no message or log line of this module holds it.
"""

from __future__ import annotations

import contextlib
import imaplib
import mailbox
import os
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from newsletter.errors import NewsletterError
from newsletter.settings import BounceMailbox

if TYPE_CHECKING:
    from imap_tools import BaseMailBox

PROCESSED = "newsletter-processed"
UNRECOGNISED = "newsletter-unrecognised"
SETTING = "NEWSLETTER_BOUNCE_MAILBOX"
BATCH = 50  # messages fetched at once: memory stays small whatever has piled up


class MailboxError(NewsletterError, ConnectionError):
    """The bounce mailbox cannot be read (the message names the setting, never the password)."""


class Source(Protocol):
    def describe(self) -> str: ...
    def batches(self) -> Iterator[list[tuple[str, bytes]]]: ...
    def move(self, keys: Sequence[str], folder: str) -> None: ...
    def close(self) -> None: ...


def open_source(config: BounceMailbox, *, timeout: float) -> Source:
    if config.maildir is not None:
        return MaildirSource(config.maildir)
    return ImapSource(config, timeout=timeout)


class MaildirSource:
    """A Maildir on this machine (cur/, new/, tmp/), e.g. where the MTA delivers bounces+*@."""

    def __init__(self, path: Path) -> None:
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise MailboxError(
                f"{SETTING} ({path}): not a Maildir (no cur, new and tmp folders) — set it to the folder "
                "your mail server delivers the bounce address to, or to imaps://user:pass@host/INBOX"
            )
        self.root = path
        self.box = mailbox.Maildir(path, create=False)

    def describe(self) -> str:
        return f"the Maildir {self.root}"

    def batches(self) -> Iterator[list[tuple[str, bytes]]]:
        keys = sorted(self.box.iterkeys())  # Maildir names start with the delivery time: oldest first
        for start in range(0, len(keys), BATCH):
            batch = []
            for key in keys[start : start + BATCH]:
                try:
                    batch.append((key, self.box.get_bytes(key)))
                except (KeyError, FileNotFoundError):
                    continue  # another run moved it meanwhile
            yield batch

    def move(self, keys: Sequence[str], folder: str) -> None:
        """A rename into the subfolder: atomic, and the message's flags and name are kept."""
        if not keys:
            return
        self.box.add_folder(folder)  # made on first use (with its maildirfolder mark), else opened
        for key in keys:
            try:
                message = self.box.get_message(key)
            except (KeyError, FileNotFoundError):
                continue  # another run moved it meanwhile
            info = message.get_info()
            name = key + (self.box.colon + info if info else "")
            subdir = message.get_subdir()
            try:
                os.rename(self.root / subdir / name, self.root / f".{folder}" / subdir / name)
            except FileNotFoundError:
                continue

    def close(self) -> None:
        self.box.close()


class ImapSource:
    """One IMAP folder over TLS (imaps://; plain imap:// only to this machine, as the settings allow)."""

    def __init__(self, config: BounceMailbox, *, timeout: float) -> None:
        self.config = config
        self.mailbox = self._login(timeout)
        self.capabilities = self._capabilities()
        self._made: dict[str, str] = {}  # folder → its name on this server, once made
        try:
            self.mailbox.folder.set(config.folder)
        except Exception as err:
            self.close()
            raise MailboxError(
                f"{SETTING}: {self.describe()}: the folder {config.folder!r} cannot be opened "
                f"({self._safe(err)}) — check the folder's name at the end of the address"
            ) from None

    def describe(self) -> str:
        return self.config.describe()

    def _login(self, timeout: float) -> BaseMailBox:
        from imap_tools import MailBox, MailBoxUnencrypted
        from imap_tools.errors import MailboxLoginError

        config = self.config
        try:
            if config.tls:
                box: BaseMailBox = MailBox(
                    config.host, config.port, timeout=timeout, ssl_context=ssl.create_default_context()
                )
            else:
                box = MailBoxUnencrypted(config.host, config.port, timeout=timeout)
        except (OSError, imaplib.IMAP4.error) as err:
            raise MailboxError(
                f"{SETTING}: cannot reach {self.describe()} ({self._safe(err)}) — check the server name and "
                "port, and that it answers IMAP over TLS (to trust a private CA, set SSL_CERT_FILE)"
            ) from None
        try:
            if (config.username + config.password).isascii():
                box.login(config.username, config.password, initial_folder=None)
            else:  # LOGIN is ASCII only; AUTHENTICATE PLAIN carries UTF-8
                box.login_utf8(config.username, config.password, initial_folder=None)
        except MailboxLoginError:
            _quietly_logout(box)
            raise MailboxError(
                f"{SETTING}: {self.describe()} refused the user name or password — check them in .env "
                "(%-encode special characters in the password)"
            ) from None
        except (OSError, imaplib.IMAP4.error) as err:
            _quietly_logout(box)
            raise MailboxError(f"{SETTING}: {self.describe()}: login failed ({self._safe(err)})") from None
        return box

    def _capabilities(self) -> set[str]:
        # imaplib keeps the capabilities of the greeting; MOVE and UIDPLUS are announced after login.
        typ, data = self.mailbox.client.capability()
        words = data[-1].decode("ascii", "replace").upper().split() if typ == "OK" and data else []
        return {*words, *(str(c).upper() for c in self.mailbox.client.capabilities)}

    def batches(self) -> Iterator[list[tuple[str, bytes]]]:
        try:
            uids = self.mailbox.uids("ALL")
            for start in range(0, len(uids), BATCH):
                chunk = uids[start : start + BATCH]
                fetched = self.mailbox.client.uid("FETCH", ",".join(chunk), "(UID BODY.PEEK[])")
                yield list(_fetched(fetched))
        except (OSError, imaplib.IMAP4.error) as err:
            raise MailboxError(f"{SETTING}: {self.describe()}: reading failed ({self._safe(err)})") from None

    def move(self, keys: Sequence[str], folder: str) -> None:
        """MOVE (RFC 6851) where the server has it, else COPY, flag and expunge only these messages."""
        from imap_tools.utils import encode_folder

        if not keys:
            return
        client = self.mailbox.client
        try:
            name = self._made.get(folder) or self._folder(folder)
            uids, target = ",".join(keys), encode_folder(name).decode("ascii")  # modified UTF-7, quoted
            if "MOVE" in self.capabilities:
                _ok(client.uid("MOVE", uids, target))
                return
            _ok(client.uid("COPY", uids, target))
            _ok(client.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)"))
            if "UIDPLUS" in self.capabilities:
                _ok(client.uid("EXPUNGE", uids))  # never expunges what someone else flagged
            else:
                _ok(client.expunge())
        except (OSError, imaplib.IMAP4.error, RuntimeError) as err:
            raise MailboxError(
                f"{SETTING}: {self.describe()}: could not move messages to {folder} ({self._safe(err)}); "
                "they stay where they are and are read again next time (counted once)"
            ) from None

    def _folder(self, folder: str) -> str:
        """The folder's full name, made on first use: at the top, or under INBOX where the server
        keeps every folder there (Courier, Cyrus: "INBOX.newsletter-processed")."""
        from imap_tools.errors import MailboxFolderCreateError

        folders = self.mailbox.folder
        delim = next((f.delim for f in folders.list("", "INBOX")), ".")
        for name in (folder, f"INBOX{delim}{folder}"):
            if folders.exists(name):
                break
            try:
                folders.create(name)
                break
            except MailboxFolderCreateError:
                continue
        else:
            raise RuntimeError(f"the server refused to create the folder {folder}")
        self._made[folder] = name
        return name

    def close(self) -> None:
        _quietly_logout(self.mailbox)

    def _safe(self, err: BaseException) -> str:
        """An error's text for a message, the password cut out should a server ever echo it."""
        text = str(err) or type(err).__name__
        if isinstance(err, socket.timeout | TimeoutError):
            text = "no answer in time"
        elif isinstance(err, ConnectionRefusedError):
            text = "connection refused"
        for secret in {self.config.password, self.config.password.replace("\\", "\\\\")} - {""}:
            text = text.replace(secret, "…")
        return text[:300]


def _fetched(result: tuple[str, list[Any]]) -> Iterator[tuple[str, bytes]]:
    """(uid, bytes) of each message in a UID FETCH answer; the UID comes before the message's bytes
    (Dovecot, Gmail) or after them, in the line that closes the item (some servers)."""
    _ok(result)
    items = result[1]
    for n, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            after = items[n + 1] if n + 1 < len(items) and isinstance(items[n + 1], bytes) else b""
            for text in (item[0], after):
                found = re.search(rb"UID (\d+)", text, re.IGNORECASE)
                if found:
                    yield found.group(1).decode(), item[1]
                    break


def _ok(result: tuple[str, Any]) -> None:
    if result[0] != "OK":
        raise RuntimeError(str(result[1])[:200])


def _quietly_logout(box: BaseMailBox) -> None:
    with contextlib.suppress(Exception):  # already gone: nothing to close
        box.logout()
