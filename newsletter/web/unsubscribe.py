"""Unsubscribing: the one-click POST of RFC 8058 from mail programs, and the footer link's page.

Opening the link changes nothing (mail scanners follow links); its button, or the mail program's
one-click POST, does.  Every answer is the same whatever the token was, and nothing here logs an
address or a token.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.errors import DataError, EditBusy, NewsletterError
from newsletter.inputs.members_edit import find_by_token, unsubscribe
from newsletter.web.pages import Pages, client

log = logging.getLogger(__name__)


def is_one_click(body: bytes) -> bool:
    """RFC 8058: the mail program POSTs List-Unsubscribe=One-Click (urlencoded or multipart); the
    page's button posts nothing."""
    return b"One-Click" in body


class UnsubscribePages(Pages):
    async def unsubscribe_page(self, request: Request) -> Response:
        return self.page("unsubscribe.html", root="../")

    async def unsubscribe(self, request: Request) -> Response:
        if not self.unsubscribe_limit.allow(client(request)):  # nothing is looked up or changed
            return self.page("trouble.html", root="../", status=429)
        body = await request.body()
        one_click = is_one_click(body)
        # The one-click POST is exempt from the same-site check: mail providers send it from their
        # own servers, with no Origin or with their own, never ours, and RFC 8058 asks for it to
        # work as it comes.  That is safe because it can only ever unsubscribe the token's owner,
        # which whoever holds the token could do anyway, and an unsubscribe harms no one.  The page's
        # button is checked like every other form (a sign-up or confirm never has this exception).
        if not one_click and self.from_elsewhere(request, "/unsubscribe/…"):
            return self.page("refused.html", root="../", status=403)
        token = request.path_params["token"]
        try:
            await run_in_threadpool(self._unsubscribe, token, "one-click" if one_click else "link")
        except NewsletterError as err:  # the address is never in these messages
            log.error("an unsubscribe could not be recorded: %s", err)
            return self.page("trouble.html", root="../", status=503)
        return self.page("unsubscribed.html", root="../")

    def _unsubscribe(self, token: str, source: str) -> None:
        path = self.project.subscribers_path
        with self.ledger() as ledger:
            address = find_by_token(path, ledger, self.secret, token)
            if address is None:
                return  # tampered, unknown or long gone: the same answer
            try:
                unsubscribe(path, ledger, address, source=source, now=self.clock(), wait=self.lock_wait)
            except (DataError, OSError) as err:  # EditBusy is an OSError too
                why = (
                    "has problems (run `newsletter check`)" if isinstance(err, DataError)
                    else "was busy with another edit" if isinstance(err, EditBusy)
                    else f"could not be rewritten ({err.strerror or type(err).__name__})"
                )  # fmt: skip
                log.warning(
                    "an unsubscribe is recorded and the member gets no mail, but subscribers.csv %s: the row "
                    "stays in the file for now",
                    why,
                )
