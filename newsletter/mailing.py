"""What a mailing says: the template context for one (meeting, reminder), built from plain data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from .model import Article, Meeting, ReminderRule, Schedule, Venue

#: How far ahead "the rest of the year's dates" look.
LATER_HORIZON = dt.timedelta(days=366)


@dataclass(frozen=True)
class Mailing:
    """One campaign: a reminder (or a change notice) for one meeting."""

    meeting: Meeting
    reminder: ReminderRule
    kind: str = "reminder"  # or "change"
    previous: str = ""  # a change notice: the details (JSON) its members were told before

    @property
    def id(self) -> str:
        return f"{self.meeting.key}/{self.reminder.name}"


def time_text(t: dt.time) -> str:
    """``18:00`` → ``6:00 PM`` — what members read in the US."""
    hour = t.hour % 12 or 12
    return f"{hour}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


def date_text(d: dt.date) -> str:
    return f"{d:%A}, {d:%B} {d.day}, {d.year}"


def when_text(days: int) -> str:
    return {0: "today", 1: "tomorrow", 7: "next week"}.get(days, f"in {days} days")


@dataclass(frozen=True)
class MeetingView:
    """A meeting as the templates see it, with its words and links worked out."""

    title: str
    weekday: str
    date_text: str
    short_date: str
    time_text: str
    timezone_text: str
    venue: Venue
    details: str
    cancelled: bool
    note: str
    calendar_url: str
    ics_filename: str
    iso_date: str


def meeting_view(meeting: Meeting, schedule: Schedule) -> MeetingView:
    tz = schedule.group.tz
    start = meeting.start(tz)
    end = start + meeting.duration
    utc = "%Y%m%dT%H%M%SZ"
    calendar = "https://calendar.google.com/calendar/render?" + urlencode(
        {
            "action": "TEMPLATE",
            "text": f"{schedule.group.name}: {meeting.title}",
            "dates": f"{start.astimezone(dt.UTC):{utc}}/{end.astimezone(dt.UTC):{utc}}",
            "location": ", ".join(p for p in (meeting.venue.name, meeting.venue.address) if p),
            "details": meeting.details or meeting.venue.note,
        }
    )
    return MeetingView(
        title=meeting.title,
        weekday=f"{meeting.date:%A}",
        date_text=date_text(meeting.date),
        short_date=f"{meeting.date:%B} {meeting.date.day}",
        time_text=time_text(meeting.time),
        timezone_text=start.tzname() or schedule.group.timezone,
        venue=meeting.venue,
        details=meeting.details,
        cancelled=meeting.cancelled,
        note=meeting.note,
        calendar_url=calendar,
        ics_filename="meeting.ics",
        iso_date=meeting.key,
    )


@dataclass(frozen=True)
class ArticleView:
    title: str
    author: str
    date_text: str
    url: str
    excerpt_html: Markup
    excerpt_text: str


def article_view(article: Article) -> ArticleView:
    from .content import excerpt

    html, text = excerpt(article)
    when = f"{article.date:%B} {article.date.day}, {article.date.year}" if article.date else ""
    # excerpt() escapes the article's text itself, so its HTML is safe to mark as such here.
    return ArticleView(article.title, article.author, when, article.url, Markup(html), text)


@dataclass(frozen=True)
class GroupView:
    name: str
    mission: str
    language: str
    direction: str
    website: str
    reply_to: str
    organisers: tuple[Any, ...]


def mail_context(
    schedule: Schedule,
    mailing: Mailing,
    *,
    article: Article | None,
    reply_to: str,
) -> dict[str, Any]:
    """Everything the templates may use that is the same for every member of the mailing."""
    meeting = mailing.meeting
    later = [
        meeting_view(m, schedule)
        for m in schedule.meetings
        if meeting.date < m.date <= meeting.date + LATER_HORIZON
    ]
    group = schedule.group
    view = meeting_view(meeting, schedule)
    where = f" at {meeting.venue.name}" if meeting.venue.name else ""
    preheader = (
        f"{view.title} {when_text(mailing.reminder.days_before)}: "
        f"{view.weekday}, {view.short_date} at {view.time_text}{where}."
    )
    if meeting.cancelled:
        preheader = f"{view.title} on {view.weekday}, {view.short_date} is cancelled."
    extra: dict[str, Any] = {}
    if mailing.kind == "change":
        from .changes import differences, headline, rebuild

        changes = differences(mailing.previous, meeting)
        extra = {
            "changes": changes,
            "previous": meeting_view(rebuild(mailing.previous), schedule),
            "change_headline": headline(changes, meeting),
        }
        preheader = f"{view.title} on {view.weekday}, {view.short_date}: {extra['change_headline']}."
    return {
        **extra,
        "group": GroupView(group.name, group.mission, "en", "ltr", group.website, reply_to, group.organisers),
        "meeting": view,
        "reminder": _ReminderView(
            mailing.reminder.name, mailing.reminder.days_before, when_text(mailing.reminder.days_before)
        ),
        "later_meetings": later,
        "article": article_view(article) if article else None,
        "preheader": preheader,
    }


@dataclass(frozen=True)
class _ReminderView:
    name: str
    days_before: int
    when_text: str
