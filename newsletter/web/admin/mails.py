"""The Mails page: any upcoming reminder exactly as a member gets it, and "Send a test to me".

The preview is built by the send pipeline's own ``prepare`` for the signed-in organiser as the member
(so its unsubscribe link is hers, never a member's), worded for the day it goes out, like
`newsletter preview`.  The HTML is shown in a 320 px and a 600 px frame: the frames load it from its
own address, under a policy that lets the mail's inline styles apply but runs no script, loads
nothing from elsewhere and sends no form.  The test goes through ``send_test``: the one pipeline,
marked as a test, recorded nowhere but in the activity log.
"""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from email.message import EmailMessage

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from newsletter.errors import DataError, NewsletterError
from newsletter.model import Subscriber
from newsletter.timing import Due, Window, find, plan
from newsletter.web.admin.base import CSP, HEADERS, Console, who

#: The Mails page may frame its own previews; everything else as on every page.
FRAMING_CSP = CSP + "; frame-src 'self'"
#: The previewed mail: its inline styles apply, nothing runs, nothing loads, nothing is sent.
MAIL_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
    "frame-ancestors 'self'; base-uri 'none'; sandbox"
)
LISTED = 12  # upcoming reminders listed


def parts(data: bytes) -> tuple[str, str]:
    """(plain text, HTML) of a built message."""
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    return (text.get_content() if text else ""), (html.get_content() if html else "")


class MailPages(Console):
    def _due(self, request: Request) -> Due | None:
        try:
            day = dt.date.fromisoformat(request.path_params["day"])
        except ValueError:
            return None
        return find(self.project.schedule, day, request.path_params["reminder"], self.clock())

    def _moment(self, due: Due) -> dt.datetime:
        """Worded as on the day it goes out (now, if it is due now), like `newsletter preview`."""
        now = self.clock()
        return now if due.state(now) == Window.DUE else due.at

    async def mails_page(self, request: Request) -> Response:
        now = self.clock()
        dues = [d for d in plan(self.project.schedule) if d.state(now) != Window.CLOSED][:LISTED]
        return self.page(request, "mails.html", dues=dues, tz=self.project.schedule.group.tz)

    def _build(self, due: Due, address: str, name: str) -> tuple[str, str, str]:
        """(subject, text, html) of the mail as ``address`` would get it."""
        from newsletter.send.pipeline import discreet_by_default, prepare

        project, moment = self.project, self._moment(due)
        prepared = prepare(project, due, now=moment, columns=project.columns())
        member = Subscriber(email=address, name=name)
        envelope = prepared.build(member, now=moment, discreet=discreet_by_default(project))
        msg = message_from_bytes(envelope.data, policy=policy.default)
        text, html = parts(envelope.data)
        return str(msg["Subject"]), text, html

    async def mail_page(
        self, request: Request, *, status: int = 200, sent: str = "", error: str = ""
    ) -> Response:
        due = self._due(request)
        if due is None:
            return self.redirect(request, "/mails")
        session = request.state.session
        try:
            subject, text, _ = await run_in_threadpool(self._build, due, session.address, session.name)
        except DataError as err:
            return self.page(request, "mail.html", status=409, due=due, subject="", text="",
                             problems=[str(p) for p in err.problems], sent=sent, error=error)  # fmt: skip
        response = self.page(request, "mail.html", status=status, due=due, subject=subject, text=text,
                             problems=[], sent=sent, error=error)  # fmt: skip
        response.headers["content-security-policy"] = FRAMING_CSP
        return response

    async def mail_html(self, request: Request) -> Response:
        due = self._due(request)
        if due is None:
            return Response(status_code=404, headers=HEADERS)
        session = request.state.session
        try:
            _, _, html = await run_in_threadpool(self._build, due, session.address, session.name)
        except DataError:
            html = "<!DOCTYPE html><html lang='en'><title>Preview</title><p>This mail cannot be built.</p>"
        return HTMLResponse(html, headers={**HEADERS, "content-security-policy": MAIL_CSP})

    async def send_test(self, request: Request) -> Response:
        from newsletter.send.pipeline import send_test

        due = self._due(request)
        if due is None:
            return self.redirect(request, "/mails")
        session = request.state.session
        try:
            where = await run_in_threadpool(
                send_test, self.project, due, session.address, now=self._moment(due)
            )
        except NewsletterError as err:
            return await self.mail_page(request, status=503, error=f"The test could not be sent: {err}")
        await run_in_threadpool(self.record, who(request), "sent a test to herself", due.id)
        return await self.mail_page(
            request, sent=f"A test of this mail was sent to you ({session.address}) via {where}."
        )
