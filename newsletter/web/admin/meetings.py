"""The Meetings page: change one meeting, or the regular rule; see who will be told before saving.

Every change goes through two steps.  "Check the change" validates the new schedule.yaml exactly as
`newsletter check` would (its messages, with the line) and shows what changes and which members will
get a change or cancellation notice, and when (``newsletter.notices``, the same decision the next
tick makes).  "Save" writes it, if schedule.yaml is still the version the form was made from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.errors import DataError, EditBusy, FieldError
from newsletter.inputs import schedule_edit as edits
from newsletter.inputs import schedule_values as fields
from newsletter.model import Meeting, Schedule, Venue
from newsletter.notices import audiences, current
from newsletter.timing import upcoming
from newsletter.web.admin.base import Console, who

DONE = {"meeting": "The meeting was saved in schedule.yaml.", "rule": "The regular meeting was saved."}
#: What the form offers for ``rsvp:`` (model.Rsvp's values).
RSVP_CHOICES = {
    "on": "Ask who comes",
    "guests": "Ask who comes and how many people in all",
    "off": "Do not ask",
}


@dataclass(frozen=True)
class Notice:
    meeting: Meeting
    start: dt.datetime
    members: list[str]  # "Name <address>" or the address


def _form_values(form: Any) -> dict[str, str]:
    return {k: str(v).strip()[:2000] for k, v in form.items() if isinstance(v, str) and k != "csrf"}


def parse_meeting(values: dict[str, str]) -> edits.MeetingEdit:
    """The form's fields as a MeetingEdit; FieldError (with the field's name as key) for a bad one."""
    return edits.MeetingEdit(
        date=fields.day(values.get("date", ""), "date"),
        time=fields.clock(values.get("time", ""), "time"),
        title=values.get("title", "") or "Support group meeting",
        venue=Venue(
            values.get("venue_name", ""), values.get("venue_address", ""), values.get("venue_note", "")
        ),
        details=values.get("details", ""),
        cancelled=values.get("cancelled") == "yes",
        note=values.get("note", ""),
        rsvp=values.get("rsvp") if values.get("rsvp") in RSVP_CHOICES else None,
    )


def parse_rule(values: dict[str, str], months: list[str]) -> edits.RuleEdit:
    start, until = values.get("start", ""), values.get("until", "")
    if not months:
        raise FieldError("no month is ticked", "tick the months the group meets in")
    return edits.RuleEdit(
        weekday=fields.weekday(values.get("weekday", ""), "weekday"),
        week=fields.week(values.get("week", ""), "week"),
        months=tuple(sorted(fields.month(m) for m in months)),
        time=fields.clock(values.get("time", ""), "time"),
        venue_name=values.get("venue_name", ""),
        venue_address=values.get("venue_address", ""),
        start=fields.day(start, "from") if start else None,
        until=fields.day(until, "until") if until else None,
    )


def meeting_values(meeting: Meeting) -> dict[str, str]:
    return {
        "date": meeting.key, "time": meeting.time.strftime("%H:%M"), "title": meeting.title,
        "venue_name": meeting.venue.name, "venue_address": meeting.venue.address,
        "venue_note": meeting.venue.note, "details": meeting.details, "note": meeting.note,
        "cancelled": "yes" if meeting.cancelled else "", "rsvp": str(meeting.rsvp),
    }  # fmt: skip


def rule_values(rule: edits.RuleEdit | None) -> tuple[dict[str, str], list[str]]:
    if rule is None:
        return {"weekday": "Tuesday", "week": "2", "time": "18:00"}, []
    values = {
        "weekday": fields.WEEKDAYS[rule.weekday],
        "week": str(rule.week),
        "time": rule.time.strftime("%H:%M"),
        "venue_name": rule.venue_name,
        "venue_address": rule.venue_address,
        "start": rule.start.isoformat() if rule.start else "",
        "until": rule.until.isoformat() if rule.until else "",
    }
    return values, [fields.MONTHS[m - 1] for m in rule.months]


class MeetingPages(Console):
    def _schedule_text(self) -> str:
        return edits.read(self.home / "schedule.yaml")

    async def meetings_page(self, request: Request) -> Response:
        schedule = self.project.schedule
        meetings = upcoming(schedule, self.clock())
        done = DONE.get(request.query_params.get("done", ""), "")
        return self.page(
            request, "meetings.html", meetings=meetings, done=done, problems=self.schedule_problems
        )

    def _meeting(self, key: str) -> Meeting | None:
        try:
            return self.project.schedule.meeting_on(dt.date.fromisoformat(key))
        except ValueError:
            return None

    async def meeting_page(self, request: Request) -> Response:
        meeting = self._meeting(request.path_params["day"])
        if meeting is None:
            return self.redirect(request, "/meetings")
        text = await run_in_threadpool(self._schedule_text)
        return self._meeting_form(request, meeting, meeting_values(meeting), edits.version(text))

    def _meeting_form(self, request: Request, meeting: Meeting, values: dict[str, str], version: str,
                      *, status: int = 200, errors: list[str] | None = None) -> Response:  # fmt: skip
        return self.page(request, "meeting.html", status=status, meeting=meeting, values=values,
                         version=version, errors=errors or [], rsvp=self._asks())  # fmt: skip

    def _asks(self) -> dict[str, str]:
        """The RSVP choices to offer: none when schedule.yaml (or this reader) asks no one."""
        return RSVP_CHOICES if edits.RSVP_SUPPORTED and self.project.schedule.group.rsvp else {}

    async def save_meeting(self, request: Request) -> Response:
        meeting = self._meeting(request.path_params["day"])
        if meeting is None:
            return self.redirect(request, "/meetings")
        values = _form_values(await request.form())
        try:
            edit = parse_meeting(values)
        except FieldError as err:
            return self._meeting_form(request, meeting, values, values.get("version", ""), status=400,
                                      errors=[f"{err.message} — {err.hint}"])  # fmt: skip
        try:
            text, schedule = await run_in_threadpool(self._apply_meeting, meeting, edit)
        except DataError as err:
            errors = [str(p) for p in err.problems]
            return self._meeting_form(
                request, meeting, values, values.get("version", ""), status=400, errors=errors
            )
        after = schedule.meeting_on(edit.date)
        changes = _changes(meeting, after)
        what = f"the meeting of {meeting.key}: " + ("; ".join(changes) or "nothing changed")
        return await self._check_or_save(request, values, text, schedule, what, "meeting", changes=changes)

    def _apply_meeting(self, meeting: Meeting, edit: edits.MeetingEdit) -> tuple[str, Schedule]:
        text = edits.edit_meeting(self._schedule_text(), meeting, edit)
        schedule = edits.validate(text, self.home)
        if edit.date != meeting.date:
            text = edits.cancel_if_still_there(text, schedule, meeting.date, edit.date)
            schedule = edits.validate(text, self.home)
        return text, schedule

    # the regular rule ------------------------------------------------------------------------------
    async def rule_page(self, request: Request) -> Response:
        text = await run_in_threadpool(self._schedule_text)
        values, months = rule_values(edits.current_rule(text))
        return self._rule_form(request, values, months, edits.version(text))

    def _rule_form(self, request: Request, values: dict[str, str], months: list[str], version: str,
                   *, status: int = 200, errors: list[str] | None = None) -> Response:  # fmt: skip
        return self.page(request, "rule.html", status=status, values=values, months=months, version=version,
                         errors=errors or [], all_months=fields.MONTHS, weekdays=fields.WEEKDAYS)  # fmt: skip

    async def save_rule(self, request: Request) -> Response:
        form = await request.form()
        values, months = _form_values(form), [str(m) for m in form.getlist("months")]
        version = values.get("version", "")
        try:
            edit = parse_rule(values, months)
        except FieldError as err:
            return self._rule_form(
                request, values, months, version, status=400, errors=[f"{err.message} — {err.hint}"]
            )
        before = self.project.schedule
        try:
            text = await run_in_threadpool(lambda: edits.edit_rule(self._schedule_text(), edit))
            schedule = await run_in_threadpool(edits.validate, text, self.home)
        except DataError as err:
            return self._rule_form(
                request, values, months, version, status=400, errors=[str(p) for p in err.problems]
            )
        changes = _rule_changes(before, schedule, self.clock())
        what = "the regular meeting: " + ("; ".join(changes) or "no meeting changes")
        return await self._check_or_save(request, values, text, schedule, what, "rule", changes=changes,
                                         months=months)  # fmt: skip

    # both ------------------------------------------------------------------------------------------
    async def _check_or_save(self, request: Request, values: dict[str, str], text: str, schedule: Schedule,
                             what: str, kind: str, **context: Any) -> Response:  # fmt: skip
        if values.get("action") == "save":
            try:
                await run_in_threadpool(self._write, text, values.get("version", ""), who(request), what)
            except edits.ScheduleChanged:
                return self.page(
                    request,
                    "confirm.html",
                    status=409,
                    kind=kind,
                    values=values,
                    error=(
                        "schedule.yaml changed since you opened this page (someone saved it meanwhile): "
                        "open the meeting again and make your change on the schedule as it is now"
                    ),
                    notices=[],
                    **context,
                )
            except EditBusy as err:
                return self.page(
                    request, "confirm.html", status=409, kind=kind, values=values, error=str(err), notices=[],
                    **context,
                )  # fmt: skip
            return self.redirect(request, f"/meetings?done={kind}")
        notices = await run_in_threadpool(self._who_hears, schedule)
        return self.page(
            request, "confirm.html", kind=kind, values=values, error="", notices=notices, **context
        )

    def _write(self, text: str, version: str, name: str, what: str) -> None:
        edits.write(self.home / "schedule.yaml", text, expected=version, wait=self.lock_wait)
        self.record(name, "changed schedule.yaml", what)

    def _who_hears(self, schedule: Schedule) -> list[Notice]:
        """The members whose last mail about a meeting no longer matches it: the next tick tells them."""
        now, tz = self.clock(), schedule.group.tz
        names = _names(self.project.subscribers_path)
        out: list[Notice] = []
        if not self.settings.state_path.exists():
            return out
        with self.ledger() as ledger:
            for key in ledger.told_meetings(since=now.astimezone(tz).date().isoformat()):
                told = ledger.told(key)
                meeting = current(schedule, key, next(iter(told.values())))
                start = meeting.start(tz)
                members = sorted({a for group in audiences(told, meeting).values() for a in group})
                if members and start > now:
                    out.append(
                        Notice(meeting, start, [f"{names[a]} <{a}>" if names.get(a) else a for a in members])
                    )
        return out


def _names(path: Any) -> dict[str, str]:
    from newsletter.inputs.members import scan_subscribers

    return {m.key: m.name for m, _ in scan_subscribers(path) if m is not None}


def _changes(before: Meeting, after: Meeting | None) -> list[str]:
    if after is None:
        return ["the meeting is no longer on the schedule"]
    old, new = edits.describe(before), edits.describe(after)
    return [f"{k}: “{old[k]}” → “{new[k]}”" for k in new if old[k] != new[k]]


def _rule_changes(before: Schedule, after: Schedule, now: dt.datetime) -> list[str]:
    """Which upcoming meetings the new rule adds, removes or changes, in words."""
    old = {m.key: m for m in upcoming(before, now)}
    new = {m.key: m for m in upcoming(after, now)}
    out = [f"new meeting on {k}" for k in sorted(new.keys() - old.keys())]
    out += [f"no meeting on {k} any more" for k in sorted(old.keys() - new.keys())]
    for key in sorted(old.keys() & new.keys()):
        if edits.describe(old[key]) != edits.describe(new[key]):
            out.append(f"{key}: " + "; ".join(_changes(old[key], new[key])))
    return out
