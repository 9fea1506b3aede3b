"""``GET /calendar.ics``: the group's meetings as one calendar a member's calendar program subscribes to
(``links.calendar_url`` gives the ``webcal://`` address every mail and page links to).

Public and the same for everyone: the meetings only, no member data, no link with a token.
"""

from __future__ import annotations

import datetime as dt

import icalendar
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.compose.invite import invitation
from newsletter.model import Discreet, snapshot
from newsletter.notices import current
from newsletter.project import Project
from newsletter.state.answers import meeting_sequences
from newsletter.state.ledger import Ledger
from newsletter.timing import HORIZON
from newsletter.web.pages import Pages

#: How far back the feed keeps meetings (a subscribed calendar drops what the feed drops).
FEED_PAST = dt.timedelta(days=31)


class CalendarPages(Pages):
    async def calendar(self, request: Request) -> Response:
        discreet = request.query_params.get("discreet", "") not in ("", "0")
        body = await run_in_threadpool(self._feed, discreet)
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={
                "cache-control": "max-age=900",
                "content-disposition": 'inline; filename="calendar.ics"',
            },
        )

    def _feed(self, discreet: bool) -> bytes:
        path = self.project.settings.state_path
        # Serving the feed must not create a state database: without one nothing was announced yet.
        if not path.exists():
            return feed(self.project, None, now=self.clock(), discreet=discreet)
        with self.ledger() as ledger:
            return feed(self.project, ledger, now=self.clock(), discreet=discreet)


def feed(project: Project, ledger: Ledger | None, *, now: dt.datetime, discreet: bool = False) -> bytes:
    """``/calendar.ics``: every meeting from a month back to a year ahead, cancelled ones included.

    Each event is the meeting's invitation (``compose.invite``): the same UID, and the SEQUENCE the
    ledger holds for what was last announced, one more when schedule.yaml has changed it since (what
    the change notice will carry), so a subscribed calendar follows every change.  A meeting that was
    announced and then taken out of schedule.yaml stays in, cancelled.  In a discreet group (or with
    ``discreet``) every title is the neutral one.  No member data.
    """
    schedule, settings = project.schedule, project.settings
    tz = schedule.group.tz
    today = now.astimezone(tz).date()
    first, last = today - FEED_PAST, today + HORIZON
    announced = meeting_sequences(ledger, since=first.isoformat()) if ledger is not None else {}
    meetings = {m.key: m for m in schedule.meetings if first <= m.date <= last}
    for key, (_, details) in announced.items():
        if key not in meetings and dt.date.fromisoformat(key) <= last:
            meetings[key] = current(schedule, key, details)  # gone from the file: cancelled
    group = schedule.group
    neutral = group.discreet or Discreet()
    if group.discreet is not None and group.discreet.default:
        discreet = True
    cal = icalendar.Calendar()
    cal.add("prodid", "-//newsletter//meeting calendar//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", neutral.title if discreet else group.name)
    cal.add("x-wr-timezone", group.timezone)
    # How often a subscribed calendar looks again (RFC 7986, and Outlook's and Apple's older name).
    cal.add("refresh-interval", dt.timedelta(hours=6), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT6H")
    for key in sorted(meetings):
        meeting = meetings[key]
        sequence, details = announced.get(key, (0, ""))
        if details and details != snapshot(meeting):
            sequence += 1
        one = icalendar.Calendar.from_ical(
            invitation(
                schedule,
                meeting,
                domain=settings.sender_domain,
                stamp=now,
                sequence=sequence,
                organizer=settings.sender_address,
            )
        )
        for event in one.walk("VEVENT"):
            if discreet:
                event["summary"] = icalendar.vText(neutral.title)
            cal.add_component(event)
    cal.add_missing_timezones(
        first_date=dt.date(first.year - 1, 1, 1), last_date=dt.date(last.year + 1, 12, 31)
    )
    return bytes(cal.to_ical())
