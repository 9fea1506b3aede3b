"""The one path every mail takes: build → sign → hand to the transport.

Reminders and change notices (many members, through the send loop), test mails, organiser notices,
sign-up confirmations: each arrives here as an unsigned ``Envelope``; ``Pipeline.finish`` signs it
(DKIM, when a key is set) and the transport the settings name takes it.  No caller signs a message
or picks a transport itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from newsletter.errors import DataError, DeliveryError, Problem
from newsletter.model import Discreet, Mailing, MailKind, Subscriber
from newsletter.settings import Settings
from newsletter.state.locks import held
from newsletter.timing import Due, upcoming

if TYPE_CHECKING:  # the rendering and SMTP stack loads only when a mail is really built
    from pathlib import Path

    from newsletter.compose.dkim import DkimSigner
    from newsletter.compose.mime import Envelope, MessageFactory
    from newsletter.compose.templates import MailRenderer, MemberValues, RenderedMailing
    from newsletter.compose.variants import Variants
    from newsletter.project import Project
    from newsletter.send.choices import Choices
    from newsletter.send.transports import Outcome, Transport


def transport_for(settings: Settings, campaign: str) -> Transport:
    """The relay SMTP_URL names, or the outbox folder (one subfolder per mailing) when it is unset."""
    from newsletter.send.transports import Outbox, Smtp

    if settings.smtp is None:
        return Outbox(settings.outbox, campaign)
    return Smtp(settings.smtp, timeout=settings.timeout)


def ledger_id(settings: Settings, mailing_id: str) -> str:
    """The mailing's name in the ledger. Outbox try-outs are kept apart under ``outbox/``: mail written
    to the outbox never counts as delivered, so the real reminder is still owed to every member."""
    return mailing_id if settings.smtp is not None else f"outbox/{mailing_id}"


class Pipeline:
    """Where one project's mail for one campaign goes, and how it is signed on the way."""

    def __init__(self, settings: Settings, signer: DkimSigner | None, campaign: str) -> None:
        self.settings = settings
        self.signer = signer
        self.campaign = campaign
        self.transport = transport_for(settings, campaign)

    @classmethod
    def of(cls, project: Project, campaign: str) -> Pipeline:
        return cls(project.settings, project.signer, campaign)

    @property
    def to_outbox(self) -> bool:
        return self.settings.smtp is None

    def describe(self) -> str:
        return self.transport.describe()

    def finish(self, envelope: Envelope) -> Envelope:
        """The envelope ready to go: signed last, over the finished headers (List-Unsubscribe included)."""
        if self.signer is None:
            return envelope
        return dataclasses.replace(envelope, data=self.signer.sign(envelope.data))

    async def send_async(self, envelope: Envelope) -> Outcome:
        """One message over its own connection (small, rare mails: notices, tests, confirmations)."""
        conn = await self.transport.connect()
        try:
            return await conn.send(self.finish(envelope))
        finally:
            await conn.close()

    def send(self, envelope: Envelope) -> None:
        """``send_async`` from synchronous code; DeliveryError when the server does not take it."""
        import asyncio  # loaded only when a mail is really sent: a no-op tick never needs it

        outcome = asyncio.run(self.send_async(envelope))
        if outcome.status != "sent":
            raise DeliveryError(f"the mail was not accepted: {outcome.code or ''} {outcome.reply}".strip())


@dataclass
class Prepared:
    """One mailing rendered once, ready to build each member's (unsigned) message."""

    due: Due
    factory: MessageFactory
    context: dict[str, Any]
    renderer: MailRenderer
    #: A template using member values in logic: its renders, one per outcome of that logic.
    variants: Variants | None = None

    def build(
        self, member: Subscriber, *, now: dt.datetime, plain: bool = False, discreet: bool = False
    ) -> Envelope:
        """Her message; ``plain``: text only, ``discreet``: neutral From, Subject and calendar title
        (her preferences)."""
        values = self.factory.member_values(member, discreet=discreet)
        fill = self.fill(values)
        if fill is None:  # render this member fully (slower, same result)
            html, text = self.renderer.render_member(self.context, values)
            return self.factory.build(
                member, now=now, bodies=(text, html), values=values, plain=plain, discreet=discreet
            )
        rendered, slot_values = fill
        return self.factory.build(
            member,
            now=now,
            values=values,
            plain=plain,
            discreet=discreet,
            rendered=rendered,
            slot_values=slot_values,
        )

    def fill(self, values: MemberValues) -> tuple[RenderedMailing, tuple[str, ...]] | None:
        """The render that is hers with the values of its slots, or None when only a full render is
        exact: a template using member values in logic that could not be traced (see
        ``compose.variants``), or a value the HTML serialiser would rewrite inside an attribute."""
        if self.renderer.fast:
            rendered = self.factory.rendered
            slot_values = rendered.values(values)
        elif self.variants is not None and (found := self.variants.fill(values)) is not None:
            rendered, slot_values = found
        else:
            return None
        return (rendered, slot_values) if rendered.fills_exactly(slot_values) else None


def list_id(group_name: str, domain: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", group_name.lower()).strip("-") or "news"
    return f"{group_name} <{slug}.{domain}>"


def prepare(
    project: Project,
    due: Due,
    *,
    now: dt.datetime,
    columns: tuple[str, ...] = (),
    sequence: int = 0,
    test: bool = False,
    coming: Collection[str] = frozenset(),
    check_only: bool = False,
) -> Prepared:
    """Render one mailing once, its wording of time taken from ``now``; ``sequence`` is the
    invitation's SEQUENCE (raised by each change); ``test`` marks a test mail as such; ``coming``:
    the members who said they would come (a change notice tells them it knows); ``check_only``:
    what `check` needs, the mail rendered and its headers checked, but no invitation built (the
    result is not for sending)."""
    from newsletter.compose.context import coming_note, neutral_preview
    from newsletter.compose.mime import MessageFactory, Neutral
    from newsletter.compose.render_cache import folder_for
    from newsletter.compose.templates import MailRenderer, make_environment

    settings, schedule, mailing = project.settings, project.schedule, due.mailing
    cache = folder_for(settings.state_dir)
    env = make_environment(project.home / "templates", cache)
    renderer = MailRenderer(env, mailing.kind, cache_dir=cache)
    context = _context(project, mailing, now=now, test=test, cache=cache)
    rendered = _shared_render(renderer, context, columns)
    cancel = mailing.kind == MailKind.CHANGE and mailing.meeting.cancelled
    ics = _invitation(project, mailing, now=now, sequence=sequence, cancel=cancel, check_only=check_only)
    # Discreet mode (her preference, or everyone's with group.discreet.default): the same mail with
    # a neutral From name, Subject, preview line and calendar title: a lock screen shows nothing.
    words = schedule.group.discreet or Discreet()
    subject = words.subject_for(mailing.meeting.date)
    subject = f"[Test] {subject}" if test else subject
    neutral = Neutral(words.sender, subject, ics(words.title), neutral_preview(subject))
    factory = MessageFactory(
        rendered=rendered,
        campaign=mailing.id,
        sender=settings.sender,
        reply_to=settings.reply_to,
        list_id=list_id(schedule.group.name, settings.sender_domain),
        ics=ics(None),
        secret=settings.secret,
        public_url=settings.public_url,
        ics_method="CANCEL" if cancel else "PUBLISH",
        tz=schedule.group.tz,
        bounce_address="" if test else settings.bounce_address,  # a test mail's bounce goes to its sender
        neutral=neutral,
        meeting_key=mailing.meeting.key,
        ask_rsvp=context["answers"].rsvp,
        coming=coming,
        coming_note=coming_note(mailing),
        preheader=context["preheader"],
    )
    if not renderer.fast:
        # Rendered per member (or per variant) from here on: the templates are tried now, for a
        # member with a name and empty columns, so that a mistake stops the mailing before any is sent.
        sample = Subscriber(f"member@{settings.sender_domain}", "Member", dict.fromkeys(columns, ""))
        renderer.render_member(context, factory.member_values(sample), inline=False)
    variants = None
    if renderer.traceable and not check_only:
        from newsletter.compose.variants import Variants

        variants = Variants(renderer, context, rendered.subject)
    return Prepared(due, factory, context, renderer, variants)


def _context(
    project: Project, mailing: Mailing, *, now: dt.datetime, test: bool, cache: Path
) -> dict[str, Any]:
    """What the templates see, the same for every member of the mailing, worded for ``now``."""
    from newsletter.compose.context import answers_view, mail_context

    settings, schedule = project.settings, project.schedule
    return mail_context(
        schedule,
        mailing,
        article=project.article_for(mailing.meeting.article),
        reply_to=settings.reply_to,
        now=now,
        later_meetings=[m for m in upcoming(schedule, now) if m.date > mailing.meeting.date],
        test=test,
        answers=answers_view(mailing, settings.public_url),
        cache_dir=cache,
    )


def _invitation(
    project: Project, mailing: Mailing, *, now: dt.datetime, sequence: int, cancel: bool, check_only: bool
) -> Callable[[str | None], bytes | None]:
    """The meeting's calendar invitation, with the title given (None: the meeting's own); none for
    `check`."""

    def ics(summary: str | None = None) -> bytes | None:
        if check_only:
            return None
        from newsletter.compose.invite import invitation

        settings = project.settings
        return invitation(
            project.schedule,
            mailing.meeting,
            domain=settings.sender_domain,
            stamp=now,
            sequence=sequence,
            cancel=cancel,
            organizer=settings.sender_address,
            summary=summary,
        )

    return ics


def _shared_render(
    renderer: MailRenderer, context: dict[str, Any], columns: tuple[str, ...]
) -> RenderedMailing:
    """What every member's mail shares: the one render with markers (``renderer.fast``), else the
    subject alone (the bodies are rendered per variant or per member); DataError when a template
    uses a column subscribers.csv does not have."""
    if renderer.fast:
        rendered = renderer.render_once(context)
        used = {s[len("member.") :] for s in rendered.slots if s.startswith("member.")}
    else:
        rendered = renderer.render_subject(context)
        used = renderer.member_columns()
    unknown = sorted(used - {"name", "email", *columns})
    if unknown:
        raise DataError(
            [
                Problem(
                    "templates/",
                    None,
                    f"a template uses member.{name} but subscribers.csv has no column '{name}'",
                    "add the column or correct the template",
                )
                for name in unknown
            ]
        )
    return rendered


class Builder:
    """Each member's message of one mailing, worded for the moment it is built.

    Rendering happens once per local day: a send that runs past midnight re-renders, so a mail
    built on the meeting's day says "today", never the "tomorrow" of the evening before.
    """

    def __init__(
        self,
        project: Project,
        due: Due,
        *,
        columns: tuple[str, ...],
        sequence: int = 0,
        choices: Choices | None = None,
    ) -> None:
        self.project, self.due, self.columns, self.sequence = project, due, columns, sequence
        self.choices = choices  # members' preferences (plain text, discreet) and who said she comes
        self._day: dt.date | None = None
        self._prepared: Prepared | None = None

    def prepared(self, now: dt.datetime) -> Prepared:
        day = now.astimezone(self.project.schedule.group.tz).date()
        if self._prepared is None or day != self._day:
            self._prepared = prepare(
                self.project,
                self.due,
                now=now,
                columns=self.columns,
                sequence=self.sequence,
                coming=self.choices.coming if self.choices else frozenset(),
            )
            self._day = day
        return self._prepared

    def build(self, member: Subscriber, *, now: dt.datetime) -> Envelope:
        prepared = self.prepared(now)
        if self.choices is None:
            return prepared.build(member, now=now)
        prefs = self.choices.of(member.key)
        return prepared.build(member, now=now, plain=prefs.plain_text, discreet=prefs.discreet)


@contextmanager
def send_lock(settings: Settings, *, wait: float) -> Iterator[bool]:
    """Hold the send lock while the block runs; yields False (holding nothing) if another run
    kept it for ``wait`` seconds, so cron, the daemon and a manual send never send at once."""
    with held(settings.state_dir, "send", wait=wait) as got:
        yield got


BUSY = (
    "another newsletter send or tick is running; this one stops here "
    "(it will pick up anything left when it runs again)"
)


def send_test(project: Project, due: Due, address: str, *, now: dt.datetime) -> str:
    """One mail to ``address`` as a member gets it, marked as a test; not recorded in the ledger."""
    from newsletter.inputs.members import validate_address

    key = validate_address(address)
    organiser = next((o for o in project.schedule.group.organisers if o.email.lower() == key.lower()), None)
    member = Subscriber(email=key, name=organiser.name if organiser else "", fields={})
    prepared = prepare(project, due, now=now, columns=project.columns(), test=True)
    pipeline = Pipeline.of(project, f"test/{due.id}")
    pipeline.send(prepared.build(member, now=now, discreet=discreet_by_default(project)))
    return pipeline.describe()


def discreet_by_default(project: Project) -> bool:
    """How a member who never chose gets her mail (a test mail, a preview): discreet when the group
    makes that everyone's default."""
    discreet = project.schedule.group.discreet
    return discreet is not None and discreet.default


Clock = Callable[[], dt.datetime]


def blocking_placeholders(project: Project, mailing: Mailing, now: dt.datetime) -> None:
    """To a real relay, a mailing that shows an example value still marked `placeholder: true` in
    schedule.yaml (its meeting's, or a later date's in the list of the rest of the year) would tell
    members something untrue: it is blocked, naming the lines. The outbox try-out goes ahead, so a
    new group sees everything before filling in its details."""
    if project.settings.smtp is None:
        return
    shown = [mailing.meeting] + [
        m for m in upcoming(project.schedule, now) if m.date > mailing.meeting.date and not m.cancelled
    ]
    lines = sorted({line for meeting in shown for line in meeting.placeholders})
    if not lines:
        return
    raise DataError(
        [
            Problem(
                "schedule.yaml",
                line,
                "this mailing would show an example value still marked `placeholder: true`",
                "write the group's real details there and delete the `placeholder: true` line",
            )
            for line in lines
        ]
    )
