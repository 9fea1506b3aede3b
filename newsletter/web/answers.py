"""Members' answers: the RSVP pages and the preferences page.

A link from a reminder opens a page with one button (mail scanners follow links, so a GET changes
nothing); the button's POST, from one of the site's own pages, records the answer.  A token that is
forged, cut short, made for another purpose or with another secret, for someone no longer on the list
(or unsubscribed), or for a meeting that has started, was called off or asks nothing: all get the
same neutral page, and nothing changes.
Nothing here logs an address or a token.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.compose.context import date_text, time_text
from newsletter.errors import ConfigError, NewsletterError
from newsletter.inputs.members import Stamp, file_stamp, scan_subscribers
from newsletter.links import (
    ANSWERS,
    NO,
    TOKEN_LENGTH,
    YES,
    calendar_url,
    preferences_token,
    preferences_token_matches,
    rsvp_for_meeting,
    rsvp_token_matches,
)
from newsletter.model import Discreet, Meeting, ReminderRule, Rsvp
from newsletter.project import Project
from newsletter.state.answers import (
    MAX_PEOPLE,
    Answer,
    Preferences,
    preferences_for,
    record_rsvp,
    rsvp_of,
    save_preferences,
)
from newsletter.state.ledger import Ledger
from newsletter.tokens import unsubscribe_token
from newsletter.web.pages import Pages, RequestLimit, client

log = logging.getLogger(__name__)

#: The templates these pages render, checked when the app starts.
ANSWER_PAGES = (
    "rsvp.html", "rsvp_done.html", "rsvp_neutral.html", "rsvp_busy.html",
    "preferences.html", "preferences_saved.html", "preferences_neutral.html", "preferences.css",
)  # fmt: skip
#: Answer and preferences requests (GET and POST) per client and in all, per hour: a GET reads the
#: list to find whose token it is, so a flood of made-up tokens is cut short; a family or a mail
#: scanner behind one address stays well under it.
ANSWERS_PER_CLIENT, ANSWERS_OVERALL = 60, 2000
#: How far ahead a member may pause her reminders.
PAUSE_MOST = dt.timedelta(days=2 * 366)
#: Fields a form of these pages may carry beyond one per reminder.
MAX_FIELDS = 8


@dataclasses.dataclass(frozen=True)
class _RsvpTarget:
    meeting: Meeting
    address: str
    previous: Answer | None


class FormProblem(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class AnswerPages(Pages):
    def __init__(
        self, project: Project, *, answers_limit: RequestLimit | None = None, **options: Any
    ) -> None:
        super().__init__(project, **options)
        folder = project.home / "templates" / "web"
        missing = [name for name in ANSWER_PAGES if not (folder / name).is_file()]
        if missing:
            raise ConfigError(
                f"{folder}: the web page templates are missing ({', '.join(missing)}) — copy templates/web/ "
                "from the newsletter source into the group's folder"
            )
        self.answers_css = (folder / "preferences.css").read_bytes()
        self.answers_limit = answers_limit or RequestLimit(
            per_client=ANSWERS_PER_CLIENT, overall=ANSWERS_OVERALL, window=3600
        )
        self._keys: tuple[Stamp, list[str]] | None = None

    async def answers_stylesheet(self, request: Request) -> Response:
        return Response(self.answers_css, media_type="text/css", headers={"cache-control": "max-age=3600"})

    # --- who a token belongs to -------------------------------------------------------------------

    def _member_keys(self) -> list[str]:
        """The list's addresses (lower-cased), read again only when subscribers.csv changed."""
        path = self.project.subscribers_path
        stamp = file_stamp(path)
        if stamp is None:
            return []
        kept = self._keys
        if kept is not None and kept[0] == stamp:
            return kept[1]
        keys = list(dict.fromkeys(member.key for member, _ in scan_subscribers(path) if member is not None))
        self._keys = (stamp, keys)
        return keys

    def _member(self, ledger: Ledger, matches: Callable[[str], bool]) -> str | None:
        """The member on the list whose token matches; someone who unsubscribed is no longer one."""
        found = next((key for key in self._member_keys() if matches(key)), None)
        return None if found is None or found in ledger.suppressed() else found

    def _rsvp_target(self, ledger: Ledger, token: str) -> _RsvpTarget | None:
        if len(token) != TOKEN_LENGTH:
            return None
        tz, now = self.project.schedule.group.tz, self.clock()
        for meeting in self.project.schedule.meetings:
            if meeting.cancelled or meeting.rsvp == Rsvp.OFF or meeting.start(tz) <= now:
                continue  # answers may change until the meeting starts, never after
            if not rsvp_for_meeting(self.secret, meeting.key, token):
                continue
            address = self._member(ledger, partial(rsvp_token_matches, self.secret, meeting.key, token=token))
            if address is None:
                return None
            return _RsvpTarget(meeting, address, rsvp_of(ledger, meeting.key, address))
        return None

    def _preferences_member(self, ledger: Ledger, token: str) -> str | None:
        if len(token) != TOKEN_LENGTH:
            return None
        return self._member(ledger, partial(preferences_token_matches, self.secret, token=token))

    # --- RSVP ---------------------------------------------------------------------------------------

    async def rsvp_page(self, request: Request) -> Response:
        token, answer = request.path_params["token"], request.path_params["answer"]
        if not self.answers_limit.allow(client(request)):
            return self.page("rsvp_busy.html", root="../../", status=429)
        try:
            target = await run_in_threadpool(self._look_up_rsvp, token) if answer in ANSWERS else None
        except NewsletterError as err:
            log.error("an RSVP page could not be shown: %s", err)
            return self.page("trouble.html", root="../../", status=503)
        if target is None:
            return self._rsvp_neutral()
        return self._rsvp_form(target, token, answer)

    async def rsvp(self, request: Request) -> Response:
        if self.from_elsewhere(request, "/rsvp/…"):
            return self.page("refused.html", root="../../", status=403)
        if not self.answers_limit.allow(client(request)):
            return self.page("rsvp_busy.html", root="../../", status=429)
        token, answer = request.path_params["token"], request.path_params["answer"]
        form = _form(await request.body(), MAX_FIELDS)
        try:
            target = await run_in_threadpool(self._look_up_rsvp, token) if answer in ANSWERS else None
            if target is None:
                return self._rsvp_neutral()
            try:
                people = _people(form, target.meeting) if answer == YES else 0
            except FormProblem as problem:
                return self._rsvp_form(target, token, answer, error=problem.message, status=400)
            recorded = await run_in_threadpool(self._record, target, answer == YES, people)
        except NewsletterError as err:
            log.error("an RSVP could not be recorded: %s", err)
            return self.page("trouble.html", root="../../", status=503)
        if recorded is None:  # the meeting started between the lookup and the write
            return self._rsvp_neutral()
        return self.page(
            "rsvp_done.html",
            root="../../",
            meeting=self._meeting_view(target.meeting),
            recorded=recorded,
            guests=target.meeting.rsvp == Rsvp.GUESTS,
            token=token,
            preferences=f"preferences/{preferences_token(self.secret, target.address)}",
        )

    def _look_up_rsvp(self, token: str) -> _RsvpTarget | None:
        with self.ledger() as ledger:
            return self._rsvp_target(ledger, token)

    def _record(self, target: _RsvpTarget, coming: bool, people: int) -> Answer | None:
        meeting = target.meeting
        now = self.clock()
        if meeting.start(self.project.schedule.group.tz) <= now:
            return None
        with self.ledger() as ledger:
            return record_rsvp(ledger, meeting.key, target.address, coming=coming, people=people, now=now)

    def _rsvp_neutral(self) -> Response:
        return self.page("rsvp_neutral.html", root="../../")

    def _rsvp_form(
        self, target: _RsvpTarget, token: str, answer: str, *, error: str = "", status: int = 200
    ) -> Response:
        return self.page(
            "rsvp.html",
            root="../../",
            status=status,
            meeting=self._meeting_view(target.meeting),
            answer=answer,
            guests=answer == YES and target.meeting.rsvp == Rsvp.GUESTS,
            previous=target.previous,
            previous_on=self._day_text(target.previous.at) if target.previous else "",
            max_people=MAX_PEOPLE,
            token=token,
            error=error,
        )

    def _meeting_view(self, meeting: Meeting) -> dict[str, str]:
        return {
            "title": meeting.title,
            "date": date_text(meeting.date),
            "time": time_text(meeting.time),
            "venue": meeting.venue.name,
            "address": meeting.venue.address,
        }

    def _day_text(self, stamp: str) -> str:
        day = dt.datetime.fromisoformat(stamp).astimezone(self.project.schedule.group.tz)
        return f"{day:%A}, {day:%B} {day.day}"

    # --- preferences --------------------------------------------------------------------------------

    async def preferences_page(self, request: Request) -> Response:
        if not self.answers_limit.allow(client(request)):
            return self.page("rsvp_busy.html", root="../", status=429)
        token = request.path_params["token"]
        try:
            found = await run_in_threadpool(self._look_up_preferences, token)
        except NewsletterError as err:
            log.error("a preferences page could not be shown: %s", err)
            return self.page("trouble.html", root="../", status=503)
        if found is None:
            return self.page("preferences_neutral.html", root="../")
        address, prefs = found
        return self._preferences_form(address, prefs)

    async def preferences(self, request: Request) -> Response:
        if self.from_elsewhere(request, "/preferences/…"):
            return self.page("refused.html", root="../", status=403)
        if not self.answers_limit.allow(client(request)):
            return self.page("rsvp_busy.html", root="../", status=429)
        token = request.path_params["token"]
        form = _form(await request.body(), MAX_FIELDS + len(self.project.schedule.reminders))
        try:
            found = await run_in_threadpool(self._look_up_preferences, token)
            if found is None:
                return self.page("preferences_neutral.html", root="../")
            address, before = found
            try:
                wanted = self._chosen(form)
            except FormProblem as problem:
                shown = self._from_form(form, before)
                return self._preferences_form(
                    address, shown, error=problem.message, field=problem.field, status=400
                )
            saved = await run_in_threadpool(self._save, address, wanted)
        except NewsletterError as err:
            log.error("preferences could not be saved: %s", err)
            return self.page("trouble.html", root="../", status=503)
        return self.page("preferences_saved.html", root="../", **self._preferences_context(address, saved))

    def _look_up_preferences(self, token: str) -> tuple[str, Preferences] | None:
        with self.ledger() as ledger:
            address = self._preferences_member(ledger, token)
            if address is None:
                return None
            return address, preferences_for(ledger, address, self.project.schedule)

    def _save(self, address: str, prefs: Preferences) -> Preferences:
        with self.ledger() as ledger:
            return save_preferences(ledger, address, prefs, schedule=self.project.schedule, now=self.clock())

    def _chosen(self, form: dict[str, list[str]]) -> Preferences:
        """The preferences the form asks for; FormProblem says what to correct."""
        known = [rule.name for rule in self.project.schedule.reminders]
        names = frozenset(name for name in form.get("reminder", []) if name in known)
        if known and not names:
            raise FormProblem("reminders", "Please choose at least one reminder, or unsubscribe below.")
        paused = None
        raw = form.get("paused_until", [""])[0].strip()
        if raw:
            today = self.clock().astimezone(self.project.schedule.group.tz).date()
            try:
                paused = dt.date.fromisoformat(raw)
            except ValueError:
                raise FormProblem("paused_until", "Please choose when the reminders start again.") from None
            if paused > today + PAUSE_MOST:
                raise FormProblem("paused_until", "Please choose a date within the next two years.")
            if paused <= today:
                paused = None  # a pause that has ended already is no pause
        return Preferences(
            reminders=names,
            plain_text=form.get("plain_text", [""])[0] == "1",
            paused_until=paused,
            discreet=form.get("discreet", [""])[0] == "1",
        )

    def _from_form(self, form: dict[str, list[str]], before: Preferences) -> Preferences:
        """What the form showed, to show it again with a problem (the pause as it was before)."""
        known = {rule.name for rule in self.project.schedule.reminders}
        return dataclasses.replace(
            before,
            reminders=frozenset(n for n in form.get("reminder", []) if n in known),
            plain_text=form.get("plain_text", [""])[0] == "1",
            discreet=form.get("discreet", [""])[0] == "1",
        )

    def _preferences_form(
        self, address: str, prefs: Preferences, *, error: str = "", field: str = "", status: int = 200
    ) -> Response:
        context = self._preferences_context(address, prefs)
        return self.page("preferences.html", root="../", status=status, error=error, field=field, **context)

    def _preferences_context(self, address: str, prefs: Preferences) -> dict[str, Any]:
        schedule = self.project.schedule
        tz = schedule.group.tz
        now = self.clock()
        neutral = schedule.group.discreet or Discreet()
        later = [m for m in schedule.meetings if not m.cancelled and m.start(tz) > now]
        chosen = prefs.reminders
        reminders = [
            {"name": rule.name, "label": reminder_label(rule), "on": chosen is None or rule.name in chosen}
            for rule in schedule.reminders
        ]
        paused = prefs.paused_until
        pauses = [{"value": "", "label": "No, keep them coming", "on": paused is None}]
        offered = {m.date for m in later[1:]}  # pausing until the next meeting pauses nothing
        if paused is not None and paused not in offered:
            offered.add(paused)
        pauses += [
            {"value": day.isoformat(), "label": f"Until {date_text(day)}", "on": day == paused}
            for day in sorted(offered)
        ]
        everyone_discreet = schedule.group.discreet is not None and schedule.group.discreet.default
        return {
            "reminders": reminders,
            "chosen_names": [r["label"] for r in reminders if r["on"]],
            "prefs": prefs,
            "pauses": pauses,
            "paused_text": date_text(paused) if paused else "",
            "neutral_sender": neutral.sender,
            "neutral_subject": neutral.subject_for(later[0].date if later else now.astimezone(tz).date()),
            "unsubscribe": f"unsubscribe/{unsubscribe_token(self.secret, address)}",
            "calendar": calendar_url(self.base_url, discreet=prefs.discreet and not everyone_discreet),
        }


def reminder_label(rule: ReminderRule) -> str:
    """How the preferences page names a reminder: "The day before, at 9:00 AM"."""
    days = rule.days_before
    when = (
        "On the day of the meeting" if days == 0
        else "The day before" if days == 1
        else "A week before" if days == 7
        else f"{days // 7} weeks before" if days % 7 == 0
        else f"{days} days before"
    )  # fmt: skip
    return f"{when}, at {time_text(rule.at)}"


def _form(body: bytes, most: int) -> dict[str, list[str]]:
    try:
        return parse_qs(body.decode("utf-8", "replace"), max_num_fields=most)
    except ValueError:  # more fields than the form has: not a person pressing our button
        return {}


def _people(form: dict[str, list[str]], meeting: Meeting) -> int:
    """How many people come in all: asked only when the meeting says rsvp: {guests: true}."""
    if meeting.rsvp != Rsvp.GUESTS:
        return 1
    raw = form.get("people", ["1"])[0].strip()
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PEOPLE:
        raise FormProblem("people", f"Please choose how many people are coming in all: 1 to {MAX_PEOPLE}.")
    return int(raw)


__all__ = ["ANSWERS_OVERALL", "ANSWERS_PER_CLIENT", "NO", "YES", "AnswerPages", "reminder_label"]
