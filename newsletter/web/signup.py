"""The double opt-in sign-up: the form, the confirmation mail, and the click that adds her to the list.

Every answer is the same whatever the list holds and whatever the caps below decided, so the pages
never tell whether someone is a member or was signed up too often; nothing here logs an address.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.compose.mime import Envelope, check_header_value, small_message
from newsletter.errors import DataError, FormError, NewsletterError
from newsletter.inputs.members import validate_name
from newsletter.inputs.members_edit import add_member, safe_address
from newsletter.links import calendar_url
from newsletter.send.pipeline import Pipeline
from newsletter.state.ledger import Ledger
from newsletter.state.members import token_hash
from newsletter.web.pages import CONFIRM_HOURS, EXPIRES, Pages, client

log = logging.getLogger(__name__)

#: Confirmation mails one mailbox can have outstanding (no mail-bombing): counted with any +tag left
#: out and capitals ignored (state.members.mailbox), else victim+1@, victim+2@ … all reach her.
PENDING_PER_ADDRESS = 3
#: … and one domain: a flood of made-up mailboxes at one provider (dots, other tags) stops here too.
PENDING_PER_DOMAIN = 20
MAX_NAME = 100
MAX_FIELDS = 10  # the form has three; more is not a person filling it in


# --- pending sign-ups (in the state database) ------------------------------------------------------
# Kept until confirmed or for CONFIRM_HOURS at most: the address of someone who never confirmed is
# health information we have no reason to keep.


def add_pending(ledger: Ledger, address: str, name: str, *, now: dt.datetime) -> str | None:
    """A new confirmation token, stored hashed; None when the mailbox or its domain has enough
    outstanding."""
    token = secrets.token_urlsafe(32)
    kept = ledger.add_signup(
        token_hash(token),
        address=address,
        name=name,
        now=now,
        expired_before=now - EXPIRES,
        most=PENDING_PER_ADDRESS,
        most_per_domain=PENDING_PER_DOMAIN,
    )
    return token if kept else None


def find_pending(ledger: Ledger, token: str, *, now: dt.datetime) -> tuple[str, str] | None:
    """(address, name) for a valid, unexpired token; None for anything else."""
    return ledger.signup(token_hash(token), expired_before=now - EXPIRES)


def forget_pending(ledger: Ledger, token: str) -> None:
    ledger.forget_signup(token_hash(token))


def forget_expired(ledger: Ledger, *, now: dt.datetime) -> None:
    ledger.forget_expired_signups(now - EXPIRES)


# --- the pages -------------------------------------------------------------------------------------


class SignupPages(Pages):
    # sign-up ------------------------------------------------------------------------------------
    def _form_page(self, **context: Any) -> Response:
        """The sign-up form, with the meetings calendar (``webcal://``) for anyone to subscribe to."""
        return self.page("signup.html", calendar=calendar_url(self.base_url), **context)

    async def signup_page(self, request: Request) -> Response:
        return self._form_page(values={}, error="", field="")

    async def signup(self, request: Request) -> Response:
        if self.from_elsewhere(request, "/signup"):  # before the limit: it is no visitor's sign-up
            return self.page("refused.html", status=403)
        if not self.limit.allow(client(request)):
            return self.page("busy.html", status=429)
        try:
            form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=MAX_FIELDS)
        except ValueError:  # more fields than the form has
            error = "Something went wrong with the form. Please fill it in again."
            return self._form_page(status=400, values={}, error=error, field="")
        values = {k: v[0] for k, v in form.items() if k in ("name", "email", "website")}
        if values.get("website"):  # the honeypot: people never see this field, robots fill it in
            return self.page("check_inbox.html")
        try:
            address, name = _clean(values.get("email", ""), values.get("name", ""))
        except FormError as err:
            return self._form_page(status=400, values=values, error=err.message, field=err.field)
        token = await run_in_threadpool(self._pending, address, name)
        if token is not None:  # None: capped, and answered like any other sign-up
            try:
                await self._send_confirmation(address, token)
            except NewsletterError as err:
                log.error("a sign-up confirmation could not be sent: %s", err)
                return self.page("trouble.html", status=503)
        return self.page("check_inbox.html")

    def _pending(self, address: str, name: str) -> str | None:
        with self.ledger() as ledger:
            return add_pending(ledger, address, name, now=self.clock())

    async def _send_confirmation(self, address: str, token: str) -> None:
        envelope = self.confirmation(address, f"{self.base_url}/confirm/{token}")
        outcome = await Pipeline.of(self.project, "signup").send_async(envelope)
        if outcome.status != "sent":
            raise NewsletterError(f"the mail server answered {outcome.code or ''} ({outcome.status})")

    def confirmation(self, address: str, url: str) -> Envelope:
        """The confirmation mail; small and rare, so the standard library builds it.

        Nothing the form's sender typed goes into it but the address it is sent to: anyone can fill
        in the form, so a name there would be their text, mailed anywhere under the group's name.
        """
        context = {"group": self.project.schedule.group, "confirm_url": url, "hours": CONFIRM_HOURS}
        envelope = small_message(
            sender=self.project.settings.sender,
            to=address,
            subject=self.env.get_template("confirm_mail.subject.txt").render(context).strip(),
            text=self.env.get_template("confirm_mail.txt").render(context),
            html=self.env.get_template("confirm_mail.html").render(context),
            now=self.clock(),
            tz=self.project.schedule.group.tz,
        )
        return envelope

    # confirm -------------------------------------------------------------------------------------
    async def confirm_page(self, request: Request) -> Response:
        return self.page("confirm.html", root="../")

    async def confirm(self, request: Request) -> Response:
        if self.from_elsewhere(request, "/confirm/…"):
            return self.page("refused.html", root="../", status=403)
        token = request.path_params["token"]
        try:
            await run_in_threadpool(self._confirm, token)
        except NewsletterError as err:
            log.error("a sign-up could not be confirmed: %s", err)
            return self.page("trouble.html", root="../", status=503)
        return self.page("confirmed.html", root="../")

    def _confirm(self, token: str) -> None:
        now = self.clock()
        with self.ledger() as ledger:
            forget_expired(ledger, now=now)
            pending = find_pending(ledger, token, now=now)
            if pending is None:
                return  # tampered, expired or used: the same answer
            address, name = pending
            # Clicking the link is the address owner's own opt-in, so it also lifts an earlier
            # unsubscribe; the ledger keeps a line saying so, shown by `subscribers list`.  A name
            # that would be a formula in a spreadsheet is written with a ' before it.
            add_member(
                self.project.subscribers_path,
                ledger,
                address,
                name=name or None,
                resubscribe=True,
                source="sign-up",
                now=now,
                wait=self.lock_wait,
            )
            forget_pending(ledger, token)  # only now: if adding failed, the link still works later


def _clean(email: str, name: str) -> tuple[str, str]:
    """Validated (address, name), or FormError saying what to correct."""
    if not email.strip().rpartition("@")[0].isascii():
        # Letters like ë before the @ need SMTPUTF8 all the way, which the reminders cannot count on
        # yet; a domain like exämple.org is fine (it is kept in its xn-- form).
        raise FormError(
            "email",
            "Sorry, we cannot yet send to an address with accented or non-Latin letters. "
            "Please use another address.",
        )
    try:
        # Also refused: an address starting with = + - @, which organisers' spreadsheets would run
        # as a formula (no person has one; =cmd|'/C calc'!A0@evil.example is a valid address).
        address = safe_address(email[:320])
    except DataError:
        raise FormError("email", "Please enter an email address like name@example.org.") from None
    name = name.strip()
    if len(name) > MAX_NAME:
        raise FormError("name", f"Please keep your name under {MAX_NAME} characters.")
    try:
        name = validate_name(name)
        check_header_value("To", name)
    except NewsletterError:
        raise FormError("name", "Please write your name on one line, as plain text.") from None
    return address, name
