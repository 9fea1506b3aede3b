"""The group's folder loaded and checked as a whole, and one mailing prepared and sent from it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings
from .due import Due
from .errors import DataError, NewsletterError, Problem
from .model import Article, Schedule, Subscriber

if TYPE_CHECKING:  # the rendering and SMTP stack loads only when a mail is really built
    from .delivery import Progress, Report
    from .message import Envelope, MessageFactory
    from .signing import DkimSigner
    from .subscribers import Stamp

log = logging.getLogger(__name__)


class Busy(NewsletterError):
    """Another send or tick holds the lock."""

    exit_code = 0


@dataclass(frozen=True)
class Project:
    settings: Settings
    schedule: Schedule
    articles: dict[str, Article]
    members_count: int | None = None  # when the list was checked: how many, and which file
    members_checked: Stamp | None = None

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def subscribers_path(self) -> Path:
        return self.home / "subscribers.csv"

    @property
    def sender(self) -> str:
        return self.settings.sender or self.schedule.group.sender

    @property
    def reply_to(self) -> str:
        # The bare address: it goes into mailto: links and the Reply-To header's address part.
        return parseaddr(self.settings.reply_to or self.schedule.group.reply_to or self.sender)[1]

    def secret(self) -> bytes:
        from .tokens import load_or_create_secret

        return self.settings.secret or load_or_create_secret(self.settings.secret_path)

    def dkim_signer(self) -> DkimSigner | None:
        """The DKIM signer when NEWSLETTER_DKIM_KEY is set; a key that cannot be used is a ConfigError."""
        if self.settings.dkim_key is None:
            return None
        from .signing import DkimSigner

        domain = parseaddr(self.sender)[1].rpartition("@")[2]
        return DkimSigner(self.settings.dkim_key, self.settings.dkim_selector, domain)

    def article_for(self, slug: str | None) -> Article | None:
        slug = slug or self.schedule.article
        if slug and slug not in self.articles:  # loaded on demand when the project was read lightly
            from .content import load_article

            self.articles[slug] = load_article(self.home / "content", slug)
        return self.articles.get(slug) if slug else None

    def members(self) -> Iterator[Subscriber]:
        from .subscribers import iter_subscribers

        return iter_subscribers(self.subscribers_path, checked=self.members_checked)


def load_project(
    settings: Settings, *, check_subscribers: bool = True, check_articles: bool = True
) -> Project:
    """Read schedule, articles and (optionally) the whole list; report every problem at once.

    ``check_articles=False`` (a tick with maybe nothing to do) defers the articles to first use.
    """
    from .schedule import article_refs, load_schedule
    from .subscribers import check_file

    problems: list[Problem] = []
    members_count: int | None = None
    members_checked: Stamp | None = None
    home = settings.home
    schedule_path = home / "schedule.yaml"
    schedule = None
    if not schedule_path.is_file():
        problems.append(
            Problem(
                "schedule.yaml",
                None,
                "file not found in " + str(home),
                "run the command in the group's folder, or pass --dir PATH",
            )
        )
    else:
        try:
            schedule = load_schedule(schedule_path)
        except DataError as err:
            problems.extend(err.problems)
    articles: dict[str, Article] = {}
    try:  # articles are checked even when the schedule has mistakes: all problems at once
        refs = article_refs(schedule_path) if schedule_path.is_file() and check_articles else []
    except DataError:
        refs = []
    if refs:
        from .content import load_article

        for slug, line in refs:
            if slug in articles:
                continue
            try:
                articles[slug] = load_article(home / "content", slug, ref_path="schedule.yaml", ref_line=line)
            except DataError as err:
                problems.extend(p for p in err.problems if p not in problems)
    if check_subscribers:
        if not (home / "subscribers.csv").is_file():
            problems.append(
                Problem("subscribers.csv", None, "file not found", "create it with a header row: email,name")
            )
        else:
            try:
                members_count, members_checked = check_file(home / "subscribers.csv")
            except DataError as err:
                problems.extend(err.problems)
    from .subscribers import validate_address

    for name, value, example in (
        ("NEWSLETTER_FROM", settings.sender, "Group name <news@example.org>"),
        ("NEWSLETTER_REPLY_TO", settings.reply_to, "margaret@example.org"),
    ):
        if not value:
            continue
        address = parseaddr(value)[1]
        try:
            # The address goes into headers and mailto: links as it is: plain ASCII only.
            if validate_address(address) != address or not address.isascii():
                raise DataError([])
        except DataError:
            problems.append(
                Problem(
                    ".env",
                    None,
                    f"{name} is not a valid plain address",
                    f"write it as {name}={example} (no accented letters)",
                )
            )
    if problems or schedule is None:
        raise DataError(problems)
    return Project(settings, schedule, articles, members_count, members_checked)


@dataclass
class Prepared:
    """One mailing rendered once, ready to build each member's message."""

    due: Due
    factory: MessageFactory
    context: dict[str, Any]
    renderer: Any
    signer: DkimSigner | None = None

    def build(self, member: Subscriber, *, now: dt.datetime) -> Envelope:
        bodies = None
        values = self.factory.member_values(member)
        # A template using member values in logic, or a value the HTML serialiser would rewrite
        # inside an attribute: render this member fully (slower, same result).
        if not self.renderer.fast or not self.factory.rendered.fills_exactly(
            self.factory.rendered.values(values)
        ):
            html, text = self.renderer.render_member(self.context, values)
            bodies = (text, html)
        envelope = self.factory.build(member, now=now, bodies=bodies, values=values)
        if self.signer is None:
            return envelope
        # Signed last, over the finished headers (List-Unsubscribe included).
        return dataclasses.replace(envelope, data=self.signer.sign(envelope.data))


def list_id(schedule: Schedule, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    slug = re.sub(r"[^a-z0-9]+", "-", schedule.group.name.lower()).strip("-") or "news"
    return f"{schedule.group.name} <{slug}.{domain}>"


def prepare(
    project: Project, due: Due, *, now: dt.datetime, columns: tuple[str, ...] = (), sequence: int = 0
) -> Prepared:
    """Render one mailing once; ``sequence`` is the invitation's SEQUENCE (raised by each change)."""
    from .invite import invitation
    from .mailing import mail_context
    from .message import MessageFactory
    from .render import MailRenderer, make_environment

    schedule, mailing = project.schedule, due.mailing
    renderer = MailRenderer(make_environment(project.home / "templates"), mailing.kind)
    article = project.article_for(mailing.meeting.article)
    context = mail_context(schedule, mailing, article=article, reply_to=project.reply_to)
    rendered = renderer.render_once(context)
    unknown = sorted(
        s[len("member.") :]
        for s in rendered.slots
        if s.startswith("member.") and s[len("member.") :] not in {"name", "email", *columns}
    )
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
    sender_domain = parseaddr(project.sender)[1].rpartition("@")[2] or "localhost"
    cancel = mailing.kind == "change" and mailing.meeting.cancelled
    ics = invitation(
        schedule,
        mailing.meeting,
        domain=sender_domain,
        stamp=now,
        sequence=sequence,
        cancel=cancel,
        organizer=parseaddr(project.sender)[1],
    )
    factory = MessageFactory(
        rendered=rendered,
        campaign=mailing.id,
        sender=project.sender,
        reply_to=project.reply_to,
        list_id=list_id(schedule, project.sender),
        ics=ics,
        secret=project.secret(),
        public_url=project.settings.public_url,
        ics_method="CANCEL" if cancel else "PUBLISH",
    )
    return Prepared(due, factory, context, renderer, project.dkim_signer())


def transport_for(project: Project, campaign: str) -> Any:
    from .transport import Outbox, Smtp

    settings = project.settings
    if settings.smtp is None:
        return Outbox(settings.outbox, campaign)
    return Smtp(settings.smtp, timeout=settings.timeout)


def send_lock(project: Project, *, wait: float) -> Any:
    from filelock import FileLock, Timeout

    project.settings.state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(project.settings.state_dir / "send.lock"))
    try:
        lock.acquire(timeout=wait)
    except Timeout as err:
        raise Busy(
            "another newsletter send or tick is running; this one stops here "
            "(it will pick up anything left when it runs again)"
        ) from err
    return lock


def columns_of(project: Project) -> tuple[str, ...]:
    from .subscribers import read_columns

    return tuple(read_columns(project.subscribers_path))


def send(
    project: Project,
    due: Due,
    *,
    clock: Callable[[], dt.datetime],
    progress: Progress | None = None,
    lock_wait: float = 60.0,
    lock: bool = True,
    stop: threading.Event | None = None,
) -> Report:
    """Send one mailing to every member not yet done (under the send lock), recording each in the ledger.

    ``lock=False`` when the caller (tick) already holds the send lock.
    """
    import asyncio

    from .changes import snapshot
    from .delivery import deliver
    from .ledger import Ledger
    from .ratelimit import limiter_for
    from .subscribers import check_file, iter_subscribers

    held = send_lock(project, wait=lock_wait) if lock else None
    try:
        with Ledger(project.settings.state_path) as ledger:
            mailing = due.mailing
            told = snapshot(mailing.meeting)
            # A change notice goes only to the members it was opened for (see scheduler.notices).
            only = ledger.enqueued(mailing.id) if mailing.kind == "change" else None
            checked = project.members_checked
            if checked is None:  # a tick reads the project lightly: check the whole list before sending
                checked = check_file(project.subscribers_path)[1]
            members = iter_subscribers(project.subscribers_path, checked=checked)
            if only is not None:
                members = (m for m in members if m.key in only)
            prepared = prepare(
                project,
                due,
                now=clock(),
                columns=columns_of(project),
                sequence=ledger.sequence(mailing.meeting.key, told),
            )
            # SMTP_RATE_LIMIT: a day's budget already spent stops here, before anything is built.
            limiter = (
                limiter_for(project.settings.rate_limit, ledger, now=clock) if project.settings.smtp else None
            )
            ledger.open_campaign(
                mailing.id,
                meeting=mailing.meeting.key,
                reminder=mailing.reminder.name,
                kind=mailing.kind,
                now=clock(),
            )
            report = asyncio.run(
                deliver(
                    campaign=mailing.id,
                    members=members,
                    build=lambda m: prepared.build(m, now=clock()),
                    ledger=ledger,
                    transport=transport_for(project, mailing.id),
                    clock=clock,
                    connections=project.settings.connections if project.settings.smtp else 1,
                    progress=progress,
                    stop=stop,
                    told=(mailing.meeting.key, told),
                    throttle=limiter.throttle if limiter else None,
                )
            )
            counts = ledger.counts(mailing.id)
            if all(status in {"sent", "failed", "suppressed", "removed"} for status in counts):
                ledger.set_campaign_state(mailing.id, "done", now=clock())
                # The list this mailing went to: if it changes while the reminder is still due,
                # tick sends it to the newcomers (see scheduler.tick).
                ledger.set_meta(f"list:{mailing.id}", repr(checked))
        return report
    finally:
        if held is not None:
            held.release()


def send_small(project: Project, envelope: Envelope, *, campaign: str, sign: bool = True) -> None:
    """Hand one small mail (DKIM-signed when a key is set) to the transport; DeliveryError if refused."""
    import asyncio

    from .errors import DeliveryError

    signer = project.dkim_signer() if sign else None
    if signer is not None:
        envelope = dataclasses.replace(envelope, data=signer.sign(envelope.data))
    transport = transport_for(project, campaign)

    async def go() -> Any:
        conn = await transport.connect()
        try:
            return await conn.send(envelope)
        finally:
            await conn.close()

    outcome = asyncio.run(go())
    if outcome.status != "sent":
        raise DeliveryError(f"the mail was not accepted: {outcome.code or ''} {outcome.reply}".strip())


def send_test(project: Project, due: Due, address: str, *, now: dt.datetime) -> str:
    """One mail to ``address`` exactly as a member gets it; not recorded in the ledger."""
    from .subscribers import validate_address

    key = validate_address(address)
    organiser = next((o for o in project.schedule.group.organisers if o.email.lower() == key.lower()), None)
    member = Subscriber(email=key, name=organiser.name if organiser else "", fields={})
    prepared = prepare(project, due, now=now, columns=columns_of(project))
    campaign = f"test/{due.id}"
    send_small(project, prepared.build(member, now=now), campaign=campaign, sign=False)  # build() signed it
    return str(transport_for(project, campaign).describe())
