"""What a mailing says: the template context for one (meeting, reminder), built from plain data."""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from newsletter.compose.render_cache import code_digest
from newsletter.links import calendar_url
from newsletter.model import Article, Mailing, MailKind, Meeting, Rsvp, Schedule, Venue, rebuild, snapshot


def time_text(t: dt.time) -> str:
    """``18:00`` → ``6:00 PM`` — what members read in the US."""
    hour = t.hour % 12 or 12
    return f"{hour}:{t.minute:02d} {'AM' if t.hour < 12 else 'PM'}"


def date_text(d: dt.date) -> str:
    return f"{d:%A}, {d:%B} {d.day}, {d.year}"


EVENING = dt.time(17, 0)  # a meeting today from this hour on is "tonight"


def when_text(meeting: Meeting, now: dt.datetime, schedule: Schedule) -> str:
    """How far off the meeting is, as of ``now`` in the group's time zone: "tonight", "today",
    "tomorrow", "on Tuesday", "next week", "in 12 days"."""
    days = (meeting.date - now.astimezone(schedule.group.tz).date()).days
    if days <= 0:
        return "tonight" if meeting.time >= EVENING else "today"
    if days == 1:
        return "tomorrow"
    if days < 7:
        return f"on {meeting.date:%A}"
    return "next week" if days == 7 else f"in {days} days"


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


@functools.lru_cache(maxsize=16)
def article_view(article: Article, cache_dir: Path | None = None) -> ArticleView:
    """By value (an edited article is a new key): every mailing featuring it shares one excerpt,
    kept in the render cache of ``cache_dir`` between runs (the group's article: no member's data)."""
    html, text = _excerpt(article, cache_dir)
    when = f"{article.date:%B} {article.date.day}, {article.date.year}" if article.date else ""
    # excerpt() escapes the article's text itself, so its HTML is safe to mark as such here.
    return ArticleView(article.title, article.author, when, article.url, Markup(html), text)


#: The code that makes an excerpt, as this process has it (read now: Markdown is not loaded).
_EXCERPT_CODE = tuple(
    code_digest(str(Path(__file__).parent.parent / "inputs" / name))
    for name in ("articles.py", "article_markdown.py")
)


def _excerpt(article: Article, cache_dir: Path | None) -> tuple[str, str]:
    if cache_dir is None:
        from newsletter.inputs.articles import excerpt

        return excerpt(article)
    from newsletter.compose.render_cache import answer_store, digest, library_versions

    store = answer_store(cache_dir)
    key = digest("excerpt", *_EXCERPT_CODE, library_versions("markdown"), article.body_markdown)
    found = store.get(key)
    if isinstance(found, list) and len(found) == 2 and all(isinstance(x, str) for x in found):
        return found[0], found[1]
    from newsletter.inputs.articles import excerpt  # its front matter reading loads ruamel.yaml

    html, text = excerpt(article)
    store.put(key, [html, text])
    return html, text


#: Invisible characters after a discreet preview line (combining grapheme joiner, zero-width non-joiner,
#: no-break space): a mail program that fills its preview from the text after the preheader finds only
#: these, and shows nothing of the mail's first lines (the meeting, the place).
PREVIEW_FILL = "\u034f\u200c\u00a0" * 80


def neutral_preview(subject: str) -> str:
    """Discreet mode's preheader: the neutral subject, then nothing a lock screen can show."""
    return subject + " " + PREVIEW_FILL


@dataclass(frozen=True)
class GroupView:
    name: str
    mission: str
    language: str
    direction: str
    website: str
    reply_to: str
    organisers: tuple[Any, ...]


@dataclass(frozen=True)
class AnswersView:
    """What a mail offers every member alike (its links are her own: ``rsvp_yes_url`` …).

    ``rsvp``: it asks whether she comes (``guests``: and how many people in all); ``preferences``: it
    links to her preferences page; ``calendar_feed``: the group's calendar as ``webcal://…``.  All off
    without NEWSLETTER_PUBLIC_URL: there is no site to link to.
    """

    rsvp: bool = False
    guests: bool = False
    preferences: bool = False
    calendar_feed: str = ""


def answers_view(mailing: Mailing, public_url: str) -> AnswersView:
    meeting = mailing.meeting
    if not public_url:
        return AnswersView()
    asks = meeting.rsvp != Rsvp.OFF and not meeting.cancelled
    return AnswersView(
        rsvp=asks,
        guests=asks and meeting.rsvp == Rsvp.GUESTS,
        preferences=True,
        calendar_feed=calendar_url(public_url),
    )


#: ``rsvp_note``: what a change notice adds for a member who said she would come.
COMING_NOTE = "You told us you’d come, so please check the new details."
COMING_NOTE_CANCELLED = "You told us you’d come: we are sorry to call it off."


def coming_note(mailing: Mailing) -> str:
    """The sentence for members who said they would come ("" for a reminder: they know)."""
    if mailing.kind != MailKind.CHANGE:
        return ""
    return COMING_NOTE_CANCELLED if mailing.meeting.cancelled else COMING_NOTE


def mail_context(
    schedule: Schedule,
    mailing: Mailing,
    *,
    article: Article | None,
    reply_to: str,
    now: dt.datetime,
    later_meetings: list[Meeting],
    test: bool = False,
    answers: AnswersView | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Everything the templates may use that is the same for every member of the mailing, worded
    for the moment ``now`` it is sent; ``later_meetings`` are the rest of the upcoming dates (see
    ``timing.upcoming``); ``test`` marks a test mail as one; ``answers`` what it offers (RSVP links,
    the preferences page, the calendar feed: none by default); ``cache_dir`` the render cache."""
    meeting = mailing.meeting
    later = [meeting_view(m, schedule) for m in later_meetings]
    group = schedule.group
    view = meeting_view(meeting, schedule)
    where = f" at {meeting.venue.name}" if meeting.venue.name else ""
    when = when_text(meeting, now, schedule)
    preheader = f"{view.title} {when}: {view.weekday}, {view.short_date} at {view.time_text}{where}."
    if meeting.cancelled:
        preheader = f"{view.title} on {view.weekday}, {view.short_date} is cancelled."
    extra: dict[str, Any] = {}
    if mailing.kind == MailKind.CHANGE:
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
        "reminder": _ReminderView(mailing.name, (meeting.date - now.astimezone(group.tz).date()).days, when),
        "test": test,
        "later_meetings": later,
        "article": article_view(article, cache_dir) if article else None,
        "preheader": preheader,
        "answers": answers or AnswersView(),
    }


@dataclass(frozen=True)
class _ReminderView:
    name: str
    days_before: int
    when_text: str


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


def differences(told: str, now: Meeting) -> list[Change]:
    """Human words for what changed, in the order a member cares about."""
    before = json.loads(told)
    after = json.loads(snapshot(now))
    out: list[Change] = []
    if before["cancelled"] != after["cancelled"]:
        out.append(
            Change(
                "Status",
                "going ahead" if not before["cancelled"] else "cancelled",
                "cancelled" if after["cancelled"] else "going ahead again",
            )
        )
    if before["time"] != after["time"]:
        out.append(Change("Time", time_text(dt.time.fromisoformat(before["time"])), time_text(now.time)))
    if before["venue"] != after["venue"]:
        out.append(Change("Place", before["venue"], after["venue"]))
    if before["address"] != after["address"]:
        out.append(Change("Address", before["address"] or "(none)", after["address"] or "(none)"))
    if before["venue_note"] != after["venue_note"]:
        out.append(Change("Note", before["venue_note"] or "(none)", after["venue_note"] or "(none)"))
    return out


def headline(changes: list[Change], now: Meeting) -> str:
    """The subject's end: "now at 6:30 PM", "now at Copper River Grill", "new time and place"."""
    labels = {c.label for c in changes}
    if now.cancelled:
        return "cancelled"
    if labels == {"Time"}:
        return f"now at {time_text(now.time)}"
    if labels <= {"Place", "Address", "Note"} and "Place" in labels:
        return f"now at {now.venue.name}"
    if labels <= {"Address", "Note"}:
        return "venue details updated"
    if "Status" in labels:
        return "going ahead after all"
    return "new time and place" if {"Time", "Place"} <= labels else "details changed"
