"""The organisers' console under ``/admin``: the list, the meetings and the mailings from a browser.

``console_app`` is its own Starlette app; `newsletter serve` mounts it beside the members' pages::

    Mount("/admin", app=console_app(project, base_url=base_url))

Nothing here answers without a session (``auth``: a single-use link mailed to an organiser), every
form carries the session's CSRF token and must come from the console's own origin, and every answer
is ``no-store`` under the public pages' Content-Security-Policy.  Members are named in addresses by
row number, never by address.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from newsletter.project import Project
from newsletter.web.admin.auth import AuthPages
from newsletter.web.admin.imports import ImportPages
from newsletter.web.admin.mails import MailPages
from newsletter.web.admin.meetings import MeetingPages
from newsletter.web.admin.reports import ReportPages

__all__ = ["ConsoleSite", "console_app"]

#: The largest request the console takes: an import upload (other forms are a few kilobytes).
MAX_BODY = 21 * 1024 * 1024


class ConsoleSite(AuthPages, ImportPages, MeetingPages, MailPages, ReportPages):
    """Every page of the console; the handlers are the methods of the classes it is made of."""


def _routes(site: ConsoleSite) -> list[BaseRoute]:
    g = site.guard
    get, post = ["GET"], ["POST"]
    return [
        Route("/admin.css", site.stylesheet, methods=get),
        Route("/sign-in", site.sign_in_page, methods=get),
        Route("/sign-in", site.sign_in, methods=post),
        Route("/sign-in/{token}", site.link_page, methods=get),
        Route("/sign-in/{token}", site.use_link, methods=post),
        Route("/sign-out", g(site.sign_out), methods=post),
        Route("/", g(site.overview), methods=get),
        Route("/members", g(site.members_page), methods=get),
        Route("/members/search", g(site.search), methods=post),
        Route("/members/add", g(site.add), methods=post),
        Route("/members/import", g(site.upload), methods=post),
        Route("/members/import/confirm", g(site.confirm), methods=post),
        Route("/members/export", g(site.export), methods=get),
        Route("/members/{line:int}", g(site.member_page), methods=get),
        Route("/members/{line:int}/rename", g(site.rename), methods=post),
        Route("/members/{line:int}/unsubscribe", g(site.remove), methods=post),
        Route("/meetings", g(site.meetings_page), methods=get),
        Route("/meetings/rule", g(site.rule_page), methods=get),
        Route("/meetings/rule", g(site.save_rule), methods=post),
        Route("/meetings/{day}", g(site.meeting_page), methods=get),
        Route("/meetings/{day}", g(site.save_meeting), methods=post),
        Route("/mails", g(site.mails_page), methods=get),
        Route("/mails/{day}/{reminder}", g(site.mail_page), methods=get),
        Route("/mails/{day}/{reminder}/html", g(site.mail_html), methods=get),
        Route("/mails/{day}/{reminder}/test", g(site.send_test), methods=post),
        Route("/deliveries", g(site.deliveries), methods=get),
        Route("/deliveries/{mailing:path}", g(site.delivery), methods=get),
        Route("/activity", g(site.activity), methods=get),
    ]


def console_app(project: Project, *, base_url: str, **options: Any) -> Starlette:
    """The console as a Starlette app, to mount at ``/admin``.

    ``base_url`` is where people reach the site (NEWSLETTER_PUBLIC_URL, or the address served): the
    sign-in links point there, forms must come from there, and an https one makes the cookie Secure.
    ``options`` go to ``Console`` (clock, sign_in_limit, address_limit, lock_wait).
    """
    site = ConsoleSite(project, base_url=base_url, **options)
    return Starlette(routes=_routes(site), max_body_size=MAX_BODY)
