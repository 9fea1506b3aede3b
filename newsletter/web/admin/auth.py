"""Signing in without a password: a single-use link mailed to an organiser, then a session.

Only the addresses under ``organisers:`` in schedule.yaml get a link, through the one send pipeline
(the outbox when no relay is set).  The page says the same for every address, and the mail goes out
after the answer has left, so not even its timing tells who is an organiser.  Opening the link shows
a button (mail scanners follow links; a GET changes nothing); pressing it uses the link up and starts
a session.  Links and session ids are kept hashed; the cookie carries the id signed with the group's
secret (itsdangerous), HttpOnly, SameSite=Lax, Secure behind https.
"""

from __future__ import annotations

import logging
import secrets

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.compose.mime import small_message
from newsletter.errors import NewsletterError
from newsletter.model import Organiser
from newsletter.send.pipeline import Pipeline
from newsletter.state import console as records
from newsletter.state.members import token_hash
from newsletter.web.admin.base import COOKIE, LINK_LIFETIME, Console, root, who
from newsletter.web.pages import client

log = logging.getLogger("newsletter.web.admin")
SIGN_IN_CAMPAIGN = "console-sign-in"
MAX_ADDRESS = 320


class AuthPages(Console):
    async def sign_in_page(self, request: Request) -> Response:
        return self.page(request, "sign_in.html", ended=request.query_params.get("ended") == "1")

    async def sign_in(self, request: Request) -> Response:
        if self.from_elsewhere(request):
            return self.page(request, "refused.html", status=403)
        if not self.sign_in_limit.allow(client(request)):
            return self.page(request, "busy.html", status=429)
        form = await request.form(max_files=0, max_fields=5)
        typed = str(form.get("email", ""))[:MAX_ADDRESS]
        organiser = self.organiser(typed)
        response = self.page(request, "check_inbox.html", minutes=int(LINK_LIFETIME.total_seconds() // 60))
        # Counted per organiser only: made-up addresses must not use up a real organiser's links.
        if organiser is not None and self.address_limit.allow(organiser.email.lower()):
            token = secrets.token_urlsafe(32)
            await run_in_threadpool(self._save_link, token, organiser.email)
            url = f"{self.base_url}{root(request)}/sign-in/{token}"
            response.background = BackgroundTask(self.send_link, organiser, url)
        return response

    def _save_link(self, token: str, address: str) -> None:
        now = self.clock()
        with self.ledger() as ledger:
            records.save_link(ledger, token_hash(token), address, now=now, expires=now + LINK_LIFETIME)

    async def send_link(self, organiser: Organiser, url: str) -> None:
        """The sign-in mail (after the answer went out); a failure is logged, never the address."""
        project = self.project
        context = {"group": project.schedule.group, "name": organiser.name, "url": url,
                   "minutes": int(LINK_LIFETIME.total_seconds() // 60)}  # fmt: skip
        try:
            envelope = small_message(
                sender=project.settings.sender,
                to=organiser.email,
                subject=f"Your sign-in link for {project.schedule.group.name}",
                text=self.env.get_template("sign_in_mail.txt").render(context),
                now=self.clock(),
                tz=project.schedule.group.tz,
            )
            outcome = await Pipeline.of(project, SIGN_IN_CAMPAIGN).send_async(envelope)
            if outcome.status != "sent":
                log.error(
                    "a console sign-in link was not accepted: %s %s", outcome.code or "", outcome.status
                )
        except (NewsletterError, OSError) as err:
            log.error("a console sign-in link could not be sent: %s", err)

    # the link ----------------------------------------------------------------------------------
    async def link_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        valid = await run_in_threadpool(self._link_valid, token)
        return self.page(request, "link.html" if valid else "link_gone.html")

    def _link_valid(self, token: str) -> bool:
        with self.ledger() as ledger:
            return records.link_is_valid(ledger, token_hash(token), now=self.clock())

    async def use_link(self, request: Request) -> Response:
        if self.from_elsewhere(request):
            return self.page(request, "refused.html", status=403)
        sid = await run_in_threadpool(self._start, request.path_params["token"])
        if sid is None:
            return self.page(request, "link_gone.html")
        response = self.redirect(request, "/")
        self.set_cookie(request, response, sid)
        return response

    def _start(self, token: str) -> str | None:
        """A new session for the link's organiser (still one in schedule.yaml); None if the link is spent."""
        now = self.clock()
        with self.ledger() as ledger:
            address = records.use_link(ledger, token_hash(token), now=now)
            organiser = self.organiser(address) if address else None
            if organiser is None:
                return None
            sid = secrets.token_urlsafe(32)
            records.start_session(
                ledger, token_hash(sid), address=organiser.email, name=organiser.name,
                csrf=secrets.token_urlsafe(32), now=now,
            )  # fmt: skip
            records.record(ledger, organiser.name, "signed in", now=now)
        return sid

    # signing out -------------------------------------------------------------------------------
    async def sign_out(self, request: Request) -> Response:
        sid = self.session_id(request)
        name = who(request)
        if sid is not None:
            await run_in_threadpool(self._end, sid, name)
        request.state.session = None
        response = self.page(request, "signed_out.html")
        response.delete_cookie(
            COOKIE, path=root(request) or "/", httponly=True, samesite="lax", secure=self.secure
        )
        return response

    def _end(self, sid: str, name: str) -> None:
        with self.ledger() as ledger:
            records.end_session(ledger, token_hash(sid))
            records.record(ledger, name, "signed out", now=self.clock())
