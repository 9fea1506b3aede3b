"""A real SMTP server (aiosmtpd) on 127.0.0.1 in a thread, recording what it receives or injecting faults."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Recorder:
    """Accepts everything and keeps it; subclasses or the hooks below inject faults."""

    messages: list[Received] = field(default_factory=list)
    rcpt_hook: Callable[[str], str | None] | None = None  # return an SMTP reply to refuse
    data_hook: Callable[[Recorder, Any, Envelope], Any] | None = None  # may be async; reply or None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_hook is not None and (reply := self.rcpt_hook(address)):
            if reply == "DROP":  # the connection goes away mid-transaction
                server.transport.abort()
                return "451 gone"
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_hook is not None:
            reply = self.data_hook(self, server, envelope)
            if asyncio.iscoroutine(reply):
                reply = await reply
            if reply == "DROP":  # the message arrived, the reply never leaves: the client cannot know
                server.transport.abort()
                return "451 gone"
            if reply:
                return str(reply)
        data = envelope.original_content or envelope.content
        assert isinstance(data, bytes)
        with self.lock:
            self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), data))
        return "250 OK queued"


class Server:
    """aiosmtpd on 127.0.0.1, port chosen by the OS, running its own event loop in a thread."""

    def __init__(self, handler: Recorder, **smtp_kwargs: Any) -> None:
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        self.smtp_kwargs = smtp_kwargs
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        self.port = future.result(timeout=10)
        return self

    async def _start(self) -> int:
        self.server = await self.loop.create_server(
            lambda: SMTP(self.handler, decode_data=False, enable_SMTPUTF8=True, **self.smtp_kwargs),
            "127.0.0.1",
            0,
        )
        return int(self.server.sockets[0].getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self.server.close()
            self.server.close_clients() if hasattr(self.server, "close_clients") else None

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages
