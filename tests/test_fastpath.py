"""The fast path builds the bytes the reference path would, for every template feature.

Fast path: what `send` builds per member (``prepare(...).build(member, now=...)``): the mailing
rendered once, member values filled in, hand-built quoted-printable and MIME.
Reference path: a full render for that member alone (``MailRenderer.render_member``: Jinja +
premailer), put into an ``email.message.EmailMessage`` with the same headers and serialised with
``as_bytes()``.

Both are parsed back with ``email.message_from_bytes(policy=policy.default)`` and must agree: the
same headers apart from Message-ID and Date, the same decoded text and HTML, the same attachment.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.compose.context import neutral_preview
from newsletter.compose.invite import invitation
from newsletter.model import Discreet, Mailing, MailKind, snapshot
from newsletter.project import Project, load_project
from newsletter.send.pipeline import Prepared, list_id, prepare
from newsletter.settings import resolve
from newsletter.timing import Due
from newsletter.tokens import unsubscribe_token

try:
    from newsletter.timing import next_due
except ImportError:  # the older name
    from newsletter.timing import next_mailing as next_due  # type: ignore[attr-defined,no-redef]

#: Before the sample's first reminder: the next one due is the dinner's week-before reminder.
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("America/New_York"))
DINNER = dt.date(2026, 12, 8)
LONG = "Maria-Magdalena Alexandrina Konstantinopoulou-Vanderbilt de la Fuente y Ólafsdóttir-Žukauskienė"

#: (email, name): with and without a name, non-ASCII, and what HTML escaping or quoting could trip on.
MEMBERS = [
    ("linda.harper@example.org", "Linda Harper"),
    ("friend.of.group@example.org", ""),
    ("zoe.martin@example.org", "Zoë Martin"),
    ("siobhan@example.org", "Siobhán O'Brien"),
    ("li@example.org", "李小龙"),
    ("emoji@example.org", "Rose 🌸"),
    ("tom.jerry@example.org", "Tom & Jerry"),
    ("angle@example.org", "<b>Bold</b> > all"),
    ("quotes@example.org", 'Ann "Nan" O\'Neil'),
    ("entity@example.org", "&amp; &lt;not a tag&gt;"),
    ("long@example.org", LONG),
    ("dot@example.org", ". Dot"),
]

PUBLIC_URL = "https://news.example.org"
CANCELLED_LATER = "Room unavailable; see you in August."
#: The sample schedule's commented-out example, switched on: a cancelled meeting in the rest-of-year list.
CANCEL_EXAMPLE = (
    "    # - {date: 2027-06-08, weekday: Tuesday, cancelled",
    "    - {date: 2027-06-08, weekday: Tuesday, cancelled",
)
DINNER_TIME = (
    '      title: Planning dinner\n      time: "18:00"',
    '      title: Planning dinner\n      time: "18:30"',
)
DINNER_CANCELLED = (
    "      title: Planning dinner\n",
    "      title: Planning dinner\n      cancelled: true\n"
    "      note: The restaurant is closed that week; we will plan by email.\n",
)
IF_NAME_HTML = (
    '{% if member.name %}<p class="lead">Welcome back, {{ member.name }}!</p>'
    '{% else %}<p class="lead">Welcome, friend!</p>{% endif %}'
)
IF_NAME_TEXT = "{% if member.name %}Welcome back, {{ member.name }}!{% else %}Welcome, friend!{% endif %}"


def edit(group: Path, path: str, old: str, new: str) -> None:
    file = group / path
    text = file.read_text(encoding="utf-8")
    assert old in text, f"{path} changed: {old!r} not found"
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


def after_greeting(group: Path, name: str, text: str) -> None:
    anchor = '<p class="greeting">{{ greeting }}</p>\n' if name.endswith(".html") else "{{ greeting }}\n"
    edit(group, f"templates/{name}", anchor, anchor + text + "\n")


def write_members(group: Path) -> None:
    with (group / "subscribers.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name", "joined"])
        for i, (email, name) in enumerate(MEMBERS):
            writer.writerow([email, name, f"2019-0{1 + i % 9}-14"])


def load(group: Path, *, public: bool = False) -> Project:
    """The group; ``public``: with the site's address set (RSVP, preferences and calendar-feed links)."""
    return load_project(resolve(group, environ={"NEWSLETTER_PUBLIC_URL": PUBLIC_URL} if public else {}))


@dataclass
class Mailout:
    project: Project
    due: Due
    sequence: int
    prep: Prepared


def reminder(group: Path, *, public: bool = False) -> Mailout:
    project = load(group, public=public)
    due = next_due(project.schedule, NOW)
    assert due is not None and due.mailing.meeting.date == DINNER and due.mailing.kind == MailKind.REMINDER
    return Mailout(project, due, 0, prepare(project, due, now=NOW, columns=project.columns()))


def change_notice(
    group: Path, change: tuple[str, str], *, public: bool = False, coming: frozenset[str] = frozenset()
) -> Mailout:
    """A change notice for the dinner, as the tick opens one after ``change`` to schedule.yaml;
    ``coming``: the members who said they would come."""
    told = load(group).schedule.meeting_on(DINNER)
    assert told is not None
    edit(group, "schedule.yaml", *change)
    project = load(group, public=public)
    meeting = project.schedule.meeting_on(DINNER)
    assert meeting is not None
    mailing = Mailing.for_change(meeting, "change-1", snapshot(told))
    due = Due(mailing, NOW, meeting.start(project.schedule.group.tz))
    prep = prepare(project, due, now=NOW, columns=project.columns(), sequence=1, coming=coming)
    return Mailout(project, due, 1, prep)


def reference(out: Mailout, member_index: int, *, plain: bool = False, discreet: bool = False) -> bytes:
    """The reference path: full per-member render → EmailMessage → as_bytes(); ``plain``: text
    only; ``discreet``: discreet mode's From name, Subject, preview line and calendar title."""
    project, prep = out.project, out.prep
    settings, schedule, meeting = project.settings, project.schedule, out.due.mailing.meeting
    member = list(project.members())[member_index]
    words = schedule.group.discreet or Discreet()
    values = prep.factory.member_values(member)
    if discreet:  # the line under the subject says only what the neutral subject says
        values = dataclasses.replace(values, preheader=neutral_preview(words.subject_for(meeting.date)))
    html, text = prep.renderer.render_member(prep.context, values)
    token = unsubscribe_token(settings.secret, member.key)
    unsubscribe = f"<mailto:{settings.reply_to}?subject=unsubscribe%20{token}>"
    if settings.public_url:
        unsubscribe += f", <{settings.public_url.rstrip('/')}/unsubscribe/{token}>"
    msg = EmailMessage()
    if discreet:
        msg["From"] = Address(display_name=words.sender, addr_spec=settings.sender_address)
        msg["Subject"] = words.subject_for(meeting.date)
    else:
        msg["From"] = settings.sender
        msg["Subject"] = prep.renderer.subject(prep.context)
    if settings.reply_to != settings.sender_address:
        msg["Reply-To"] = settings.reply_to
    msg["List-Id"] = list_id(schedule.group.name, settings.sender_domain)
    msg["To"] = Address(display_name=member.name, addr_spec=member.email)
    msg["Date"] = format_datetime(NOW)
    msg["Message-ID"] = make_msgid(domain=settings.sender_domain)
    msg["List-Unsubscribe"] = unsubscribe
    if settings.public_url:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text)
    if not plain:
        msg.add_alternative(html, subtype="html")
    cancel = out.due.mailing.kind == MailKind.CHANGE and meeting.cancelled
    ics = invitation(
        schedule,
        meeting,
        domain=settings.sender_domain,
        stamp=NOW,
        sequence=out.sequence,
        cancel=cancel,
        organizer=settings.sender_address,
        summary=words.title if discreet else None,
    )
    msg.add_attachment(
        ics,
        maintype="text",
        subtype="calendar",
        filename="meeting.ics",
        params={"method": "CANCEL" if cancel else "PUBLISH"},
    )
    return msg.as_bytes()


def parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def headers(msg: EmailMessage) -> list[tuple[str, object]]:
    """Top-level headers, decoded: addresses as (display name, address); MIME framing by type only."""
    out: list[tuple[str, object]] = []
    for name, value in msg.items():
        key = name.lower()
        if key in ("date", "message-id"):
            continue
        if key == "content-type":
            out.append((key, msg.get_content_type()))  # not the boundary, which is random
        elif hasattr(value, "addresses"):
            out.append((key, tuple((a.display_name, a.addr_spec) for a in value.addresses)))
        else:
            out.append((key, " ".join(str(value).split())))
    return sorted(out, key=repr)


def attachments(msg: EmailMessage) -> list[tuple[str, str | None, object, bytes]]:
    out: list[tuple[str, str | None, object, bytes]] = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append((part.get_content_type(), part.get_filename(), part.get_param("method"), payload))
    return out


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None, f"no text/{kind} part"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def assert_same(fast_bytes: bytes, reference_bytes: bytes, who: str) -> tuple[str, str]:
    fast, ref = parse(fast_bytes), parse(reference_bytes)
    assert not fast.defects and not ref.defects, (fast.defects, ref.defects)
    assert headers(fast) == headers(ref), who
    assert [p.get_content_type() for p in fast.walk()] == [p.get_content_type() for p in ref.walk()], who
    text = body(fast, "plain")
    # The fast path's bodies decode with CRLF line ends, EmailMessage.as_bytes() writes LF: compare
    # line by line.
    assert text.splitlines() == body(ref, "plain").splitlines(), f"{who}: text/plain differs"
    html = ""
    if fast.get_body(("html",)) is not None or ref.get_body(("html",)) is not None:
        html = body(fast, "html")
        assert html.splitlines() == body(ref, "html").splitlines(), f"{who}: text/html differs"
    assert attachments(fast) == attachments(ref), f"{who}: attachment differs"
    return text, html


def check_every_member(out: Mailout, *, plain: bool = False, discreet: bool = False) -> list[tuple[str, str]]:
    members = list(out.project.members())
    assert [m.email for m in members] == [e for e, _ in MEMBERS]
    bodies = []
    for i, member in enumerate(members):
        if plain or discreet:
            data = out.prep.build(member, now=NOW, plain=plain, discreet=discreet).data
        else:
            data = out.prep.build(member, now=NOW).data
        ref = reference(out, i, plain=plain, discreet=discreet)
        bodies.append(assert_same(data, ref, repr(member.name or member.email)))
    return bodies


def flat(text: str) -> str:
    return " ".join(text.split())


# --- the cases ---------------------------------------------------------------------------------------


def case_reminder(group: Path) -> tuple[Mailout, Callable[[list[tuple[str, str]]], None]]:
    """The dinner's reminder: venue with a note, and a cancelled meeting in the rest-of-year list."""
    edit(group, "schedule.yaml", *CANCEL_EXAMPLE)
    out = reminder(group)
    assert out.prep.renderer.fast

    def expect(bodies: list[tuple[str, str]]) -> None:
        text, html = bodies[0]
        for content in (text, html):
            assert "We have a private room reserved." in flat(content)
            assert "Cancelled." in flat(content) and CANCELLED_LATER in flat(content)
        assert "Dear Linda Harper," in text and "Hello," in bodies[1][0]

    return out, expect


def case_change_time(group: Path) -> tuple[Mailout, Callable[[list[tuple[str, str]]], None]]:
    out = change_notice(group, DINNER_TIME)
    assert out.prep.renderer.fast
    assert out.prep.factory.rendered.subject.startswith("Changed: Planning dinner")

    def expect(bodies: list[tuple[str, str]]) -> None:
        assert "Time: was 6:00 PM, now 6:30 PM" in flat(bodies[0][0])

    return out, expect


def case_change_cancelled(group: Path) -> tuple[Mailout, Callable[[list[tuple[str, str]]], None]]:
    out = change_notice(group, DINNER_CANCELLED)
    assert out.prep.factory.rendered.subject.startswith("Cancelled: Planning dinner")

    def expect(bodies: list[tuple[str, str]]) -> None:
        assert "The restaurant is closed that week" in flat(bodies[0][1])

    return out, expect


def case_if_member_name(group: Path) -> tuple[Mailout, Callable[[list[tuple[str, str]]], None]]:
    """A template using a member value in logic: rendered once for the members with a name, once
    for those without (more such templates below, under "personalised templates")."""
    after_greeting(group, "reminder.html", IF_NAME_HTML)
    after_greeting(group, "reminder.txt", IF_NAME_TEXT)
    out = reminder(group)
    assert not out.prep.renderer.fast and out.prep.variants is not None

    def expect(bodies: list[tuple[str, str]]) -> None:
        assert "Welcome back, Linda Harper!" in bodies[0][0] and "Welcome back, Linda Harper!" in bodies[0][1]
        assert "Welcome, friend!" in bodies[1][0] and "Welcome, friend!" in bodies[1][1]
        assert "Welcome back, Tom &amp; Jerry!" in bodies[6][1]
        assert out.prep.variants is not None
        assert (out.prep.variants.renders, out.prep.variants.full) == (2, 0)

    return out, expect


def case_member_values(group: Path) -> tuple[Mailout, Callable[[list[tuple[str, str]]], None]]:
    """Member values printed in text, in HTML text and in an HTML attribute."""
    after_greeting(
        group,
        "reminder.html",
        '<p class="lead"><a title="{{ member.name }}" href="mailto:{{ member.email }}">{{ member.name }}</a>'
        " joined {{ member.joined }}</p>",
    )
    after_greeting(group, "reminder.txt", "{{ member.name }} <{{ member.email }}> joined {{ member.joined }}")
    out = reminder(group)
    assert out.prep.renderer.fast

    def expect(bodies: list[tuple[str, str]]) -> None:
        assert "Tom & Jerry <tom.jerry@example.org> joined" in bodies[6][0]
        assert ">Tom &amp; Jerry</a> joined" in bodies[6][1]

    return out, expect


def case_public_answers(group: Path) -> tuple[Mailout, Callable[[list[tuple[str, str]]], None]]:
    """With the site's address set: RSVP links (with a headcount), preferences and calendar-feed
    links, and the https unsubscribe link with one-click List-Unsubscribe-Post."""
    out = reminder(group, public=True)
    assert out.prep.renderer.fast
    assert out.prep.context["answers"].rsvp and out.prep.context["answers"].guests

    def expect(bodies: list[tuple[str, str]]) -> None:
        text, html = bodies[0]
        assert "Will you be there?" in html and f'href="{PUBLIC_URL}/' in html
        assert f"{PUBLIC_URL}/" in text

    return out, expect


def case_change_coming(group: Path) -> tuple[Mailout, Callable[[list[tuple[str, str]]], None]]:
    """A change notice that tells the members who said they would come that it knows (rsvp_note)."""
    out = change_notice(group, DINNER_TIME, public=True, coming=frozenset({MEMBERS[0][0], MEMBERS[6][0]}))

    def expect(bodies: list[tuple[str, str]]) -> None:
        note = "You told us you’d come"
        assert note in flat(bodies[0][0]) and note in flat(bodies[6][1]) and note not in flat(bodies[1][1])

    return out, expect


CASES = {
    "reminder-dinner-venue-note-cancelled-later": case_reminder,
    "change-notice-time": case_change_time,
    "change-notice-cancelled": case_change_cancelled,
    "if-member-name": case_if_member_name,
    "member-values-text-html-attribute": case_member_values,
    "public-url-rsvp-preferences-feed": case_public_answers,
    "change-notice-coming-note": case_change_coming,
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_equals_reference(group: Path, case: str) -> None:
    write_members(group)
    out, expect = CASES[case](group)
    expect(check_every_member(out))


@pytest.mark.parametrize(("plain", "discreet"), [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize(
    "case", ["reminder-dinner-venue-note-cancelled-later", "change-notice-cancelled", "if-member-name"]
)
def test_plain_and_discreet_forms(group: Path, case: str, plain: bool, discreet: bool) -> None:
    """A member's own form: text only, and/or discreet mode's neutral From, Subject and calendar title."""
    write_members(group)
    out, _ = CASES[case](group)
    bodies = check_every_member(out, plain=plain, discreet=discreet)
    assert all(html == "" for _, html in bodies) if plain else all(html for _, html in bodies)


# --- personalised templates: member values in logic ----------------------------------------------
#
# Each is rendered once per distinct outcome of its logic on member values (``compose.variants``);
# ``renders`` is how many distinct renders the twelve MEMBERS need, and every member must come out
# as the reference path gives her mail, whether through one of those renders or (``renders`` None:
# a template the tracing does not take) through a full render of her own.


@dataclass(frozen=True)
class Personalised:
    html: str  # put after the greeting of reminder.html
    text: str  # and of reminder.txt
    renders: int | None
    public: bool = False


LEAD = '<p class="lead">{}</p>'
FILTERS = (
    "{{ member.name|upper }} | {{ member.name|title }} | {{ member.name|default('friend', true) }} | "
    "{{ member.name|length }} | {{ member.name|truncate(12) }} | {{ member.name|replace(' ', '_') }}"
)
PERSONALISED = {
    # {% if %} on a CSV column of the group's own, with a comparison
    "if-custom-column": Personalised(
        '{% if member.joined >= "2019-05" %}<p class="lead">With us since {{ member.joined }}.</p>'
        '{% else %}<p class="lead">An old friend of the group.</p>{% endif %}',
        '{% if member.joined >= "2019-05" %}With us since {{ member.joined }}.'
        "{% else %}An old friend of the group.{% endif %}",
        2,
    ),
    # filters whose result is printed: worked out per member; `default(…, true)` asks for truth
    "filters": Personalised(
        LEAD.format(FILTERS),
        FILTERS + " | {{ member.name|wordwrap(12) }} | {{ member.name|center(30) }}",
        2,
    ),
    "filter-chain-in-attributes": Personalised(
        LEAD.format(
            "<a title=\"{{ member.name|default('friend', true)|title }}\" "
            'href="mailto:{{ member.email|lower }}">{{ member.name|trim|capitalize }}</a>'
        ),
        "{{ member.email|upper }} {{ (member.name or 'friend')|lower }}",
        2,
    ),
    "equals-contains-length": Personalised(
        '{% if member.name == "Linda Harper" %}<p class="lead">Linda!</p>'
        '{% elif "&" in member.name or member.name|length > 40 %}'
        '<p class="lead">Special: {{ member.name }}</p>{% endif %}',
        '{% if member.name != "Linda Harper" %}Not Linda.{% endif %}',
        4,  # Linda; a name with "&"; a long name; the others
    ),
    "nested-ifs": Personalised(
        '{% if member.name %}{% if member.joined < "2019-05" %}<p class="lead">Early: {{ member.name }}</p>'
        '{% else %}<p class="lead">Later: {{ member.name }}</p>{% endif %}'
        '{% else %}<p class="lead">No name.</p>{% endif %}',
        "",
        3,
    ),
    "text-template-only": Personalised(
        "", "{% if member.name %}Good to see you, {{ member.name|title }}.{% endif %}", 2
    ),
    "column-tests-and-items": Personalised(
        '{% if member.joined is defined and member["name"] is not none %}'
        '<p class="lead">{{ member["name"] }} joined {{ member["joined"] }}</p>{% endif %}',
        "{% if member.email is undefined %}No address.{% else %}{{ member.email }}{% endif %}",
        1,
    ),
    "scalars-in-logic": Personalised(
        '{% if rsvp_yes_url %}<p class="lead"><a href="{{ rsvp_yes_url }}">Yes</a></p>{% endif %}'
        "{% if greeting|length > 20 %}<p>{{ greeting|upper }}</p>{% endif %}",
        "{% if preferences_url %}{{ preferences_url }}{% endif %}",
        2,
        public=True,
    ),
    # a value used whole (a loop over it, `~`, a method, `|e`, `|safe`): one render per distinct value
    "loop-over-a-value": Personalised(
        LEAD.format("{% for word in member.name.split() %}<em>{{ word }}</em> {% endfor %}"),
        '{% for part in member.joined.split("-") %}{{ part }}/{% endfor %}',
        12,
    ),
    "whole-values": Personalised(
        LEAD.format('{{ member.name ~ "!" }} {{ member.name|e }} {{ member.name|safe }}'),
        "{{ member.name|list|length }}",
        12,
    ),
    "raw-in-html": Personalised(
        '{% if member.name %}{% autoescape false %}<p class="lead">{{ member.name }}</p>'
        "{% endautoescape %}{% endif %}",
        "{% autoescape true %}{{ member.name }}{% endautoescape %}",
        12,
    ),
    # output captured as a value: never traced, every member rendered in full
    "macro": Personalised(
        '{% macro hello(n) %}<p class="lead">Hello {{ n }}</p>{% endmacro %}{{ hello(member.name) }}',
        "",
        None,
    ),
    "set-block": Personalised(
        "{% set who %}{{ member.name }}{% endset %}"
        '{% if who|length > 12 %}<p class="lead">{{ who }}</p>{% endif %}',
        "",
        None,
    ),
    "filter-block": Personalised(LEAD.format("{% filter upper %}{{ member.name }}{% endfilter %}"), "", None),
}


def personalised(group: Path, case: str) -> Mailout:
    write_members(group)
    spec = PERSONALISED[case]
    after_greeting(group, "reminder.html", spec.html)
    after_greeting(group, "reminder.txt", spec.text)
    out = reminder(group, public=spec.public)
    assert not out.prep.renderer.fast
    assert (out.prep.variants is None) == (spec.renders is None)
    return out


def assert_renders(out: Mailout, case: str) -> None:
    if out.prep.variants is not None:
        assert (out.prep.variants.renders, out.prep.variants.full) == (PERSONALISED[case].renders, 0)


@pytest.mark.parametrize("case", list(PERSONALISED))
def test_personalised_template_equals_reference(group: Path, case: str) -> None:
    out = personalised(group, case)
    check_every_member(out)
    assert_renders(out, case)


@pytest.mark.parametrize(("plain", "discreet"), [(True, False), (False, True)])
@pytest.mark.parametrize("case", ["filters", "nested-ifs", "macro"])
def test_personalised_plain_and_discreet_forms(group: Path, case: str, plain: bool, discreet: bool) -> None:
    out = personalised(group, case)
    check_every_member(out, plain=plain, discreet=discreet)
    assert_renders(out, case)
