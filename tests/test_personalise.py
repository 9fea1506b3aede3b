"""Render once, personalise cheaply: each member's bytes are what a full per-member render gives."""

from __future__ import annotations

import csv
import datetime as dt
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.model import Subscriber
from newsletter.project import load_project
from newsletter.send.pipeline import Prepared, prepare
from newsletter.settings import resolve
from newsletter.timing import next_due

#: Before the sample's first reminder: `send` picks the dinner's week-before reminder.
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("America/New_York"))
LONG = "Maria-Magdalena Alexandrina Konstantinopoulou-Vanderbilt de la Fuente y Ólafsdóttir-Žukauskienė"

#: (email, name, city): every kind of value that HTML escaping, UTF-8 or quoted-printable could trip on.
TRICKY = [
    ("tom.jerry@example.org", "Tom & Jerry", "Greenville & Spartanburg"),
    ("angle@example.org", "<b>Bold</b> > all", "<script>alert(1)</script>"),
    ("quotes@example.org", 'Ann "Nan" O\'Neil', 'The "Upstate"'),
    ("double@example.org", 'Margaret "Peggy" Smith', "Taylors"),
    ("apostrophe@example.org", "Siobhán O'Brien", "Coeur d'Alene"),
    ("zoe@example.org", "Zoë Martin", "Zürich"),
    ("li@example.org", "李小龙", "北京"),
    ("long@example.org", LONG, LONG),
    ("noname@example.org", "", ""),
    ("nbsp@example.org", "Ana\u00a0Lucía", "São\u00a0Paulo"),
    ("entity@example.org", "&amp; &lt;not a tag&gt;", "&#65;"),
    ("marker@example.org", "NLSLOT000QZX", "NLSLOT001QZX"),
    ("o'neil@example.org", "Pat", "Cork"),
    ("tom&jerry@example.org", "Emoji 🌸 Rose", "= sign =3D"),
]


def write_members(group: Path, rows: list[tuple[str, str, str]]) -> None:
    with (group / "subscribers.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name", "joined", "city"])
        for i, (email, name, city) in enumerate(rows):
            writer.writerow([email, name, f"2019-0{1 + i % 9}-14", city])


def add_to_template(group: Path, name: str, text: str) -> None:
    """Put ``text`` right after the greeting of templates/NAME."""
    path = group / "templates" / name
    source = path.read_text(encoding="utf-8")
    anchor = '<p class="greeting">{{ greeting }}</p>\n' if name.endswith(".html") else "{{ greeting }}\n"
    assert anchor in source, f"templates/{name} changed: put the test's lines somewhere else"
    path.write_text(source.replace(anchor, anchor + text + "\n", 1), encoding="utf-8")


def prepared(group: Path) -> tuple[Prepared, list[Subscriber]]:
    project = load_project(resolve(group, environ={}))
    due = next_due(project.schedule, NOW)
    assert due is not None
    return prepare(project, due, now=NOW, columns=project.columns()), list(project.members())


def per_member(prep: Prepared, member: Subscriber) -> bytes:
    """The reference: Jinja + premailer for this member alone, then MIME."""
    html, text = prep.renderer.render_member(prep.context, prep.factory.member_values(member))
    return prep.factory.build(member, now=NOW, bodies=(text, html)).data


def without_date_and_id(data: bytes) -> bytes:
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.startswith((b"Date:", b"Message-ID:"))]
    return b"\r\n".join(lines) + sep + body


def assert_same(fast: bytes, reference: bytes, who: str) -> None:
    a, b = without_date_and_id(fast), without_date_and_id(reference)
    if a != b:  # show the first differing line rather than two 25 KB blobs
        first = next((x, y) for x, y in zip(a.split(b"\r\n"), b.split(b"\r\n"), strict=False) if x != y)
        pytest.fail(
            f"{who}: fast path differs from the per-member render\n fast: {first[0]!r}\n  ref: {first[1]!r}"
        )
    assert fast == reference  # same `now`, same secret: Date and Message-ID agree as well


def parts(data: bytes) -> tuple[str, str]:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_shipped_templates(group: Path) -> None:
    write_members(group, TRICKY)
    prep, members = prepared(group)
    assert prep.renderer.fast
    assert len(members) == len(TRICKY)
    for member in members:
        assert_same(prep.build(member, now=NOW).data, per_member(prep, member), member.email)


def test_member_values_and_extra_columns_in_text(group: Path) -> None:
    write_members(group, TRICKY)
    add_to_template(
        group,
        "reminder.html",
        '<p class="lead">{{ member.name }} of {{ member.city }}, a member since {{ member.joined }}:'
        " <strong>{{ member.name }}</strong> ({{ member.email }})</p>",
    )
    add_to_template(
        group, "reminder.txt", "{{ member.name }} of {{ member.city }}, a member since {{ member.joined }}\n"
    )
    prep, members = prepared(group)
    assert prep.renderer.fast
    assert {"member.name", "member.city", "member.joined", "member.email"} <= set(prep.factory.rendered.slots)
    for member in members:
        data = prep.build(member, now=NOW).data
        assert_same(data, per_member(prep, member), member.email)
        text, html = parts(data)
        city = member.fields["city"]
        assert f"{member.name} of {city}, a member since {member.fields['joined']}" in text
        assert f"of {city.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}, a member" in html


def test_long_name_crosses_quoted_printable_lines(group: Path) -> None:
    write_members(group, [("long@example.org", LONG, LONG)])
    add_to_template(group, "reminder.txt", "{{ member.name }} / {{ member.city }} / {{ member.name }}\n")
    prep, [member] = prepared(group)
    data = prep.build(member, now=NOW).data
    assert_same(data, per_member(prep, member), member.email)
    msg = message_from_bytes(data, policy=policy.default)
    for part in msg.walk():
        if part["Content-Transfer-Encoding"] == "quoted-printable":
            raw = part.get_payload(decode=False)
            assert isinstance(raw, str)
            assert max(map(len, raw.splitlines())) <= 76  # soft line breaks, as RFC 2045 asks
    text, html = parts(data)
    assert f"Dear {LONG}," in text and f"{LONG} / {LONG} / {LONG}" in text and f"Dear {LONG}," in html


# Values libxml2 rewrites inside attributes (quotes, '&', spaces, non-ASCII) take the full per-member
# render (RenderedMailing.fills_exactly), so these too come out byte for byte the same.
@pytest.mark.parametrize(
    ("attribute", "name"),
    [
        ("title", "Tom & Jerry"),
        ("title", "Siobhán O'Brien"),
        ("title", "<b>Bold</b>"),
        ("title", 'Ann "Nan" O\'Neil'),  # both quotes: lxml keeps "…" and writes &quot;
        ("title", "Zoë 李"),
        ("href", "https://example.org/?id=42&x=1"),
        ("title", 'Margaret "Peggy" Smith'),
        ("title", "x&{y}"),
        ("title", "a <!-- b --> c"),
        ("href", "https://example.org/?n=Ann Lee"),
        ("href", "https://example.org/?n=Zoë"),
    ],
)
def test_member_value_in_an_attribute(group: Path, attribute: str, name: str) -> None:
    write_members(group, [("member@example.org", name, "")])
    add_to_template(
        group, "reminder.html", f'<p class="lead"><a {attribute}="{{{{ member.name }}}}">Link</a></p>'
    )
    prep, [member] = prepared(group)
    assert_same(prep.build(member, now=NOW).data, per_member(prep, member), repr(name))


def test_member_value_in_logic_renders_each_member(group: Path) -> None:
    write_members(group, [("zoe@example.org", "Zoë & Co", "x"), ("noname@example.org", "", "")])
    add_to_template(
        group,
        "reminder.html",
        '{% if member.name %}<p class="lead">Welcome back, {{ member.name }}!</p>'
        '{% else %}<p class="lead">Welcome, friend!</p>{% endif %}',
    )
    prep, [named, unnamed] = prepared(group)
    assert not prep.renderer.fast  # markers would make every `if` true
    for member, expected in ((named, "Welcome back, Zoë &amp; Co!"), (unnamed, "Welcome, friend!")):
        data = prep.build(member, now=NOW).data
        assert_same(data, per_member(prep, member), member.email)
        assert expected in " ".join(parts(data)[1].split())
    # What the fallback avoids: filled-in markers take the wrong branch for a member with no name.
    wrong = prep.factory.build(unnamed, now=NOW).data
    assert "Welcome back, !" in " ".join(parts(wrong)[1].split())


def test_reply_to_with_a_display_name(group: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_members(group, [("zoe@example.org", "Zoë", "")])
    (group / ".env").write_text("NEWSLETTER_REPLY_TO=Vonnie <vonnie@example.org>\n", encoding="utf-8")
    project = load_project(resolve(group, environ={}))
    due = next_due(project.schedule, NOW)
    assert due is not None
    prep = prepare(project, due, now=NOW, columns=project.columns())
    [member] = list(project.members())
    data = prep.build(member, now=NOW).data
    msg = message_from_bytes(data, policy=policy.default)
    assert "<mailto:vonnie@example.org?subject=unsubscribe" in " ".join(str(msg["List-Unsubscribe"]).split())
    assert_same(data, per_member(prep, member), member.email)


def test_member_value_printed_without_autoescape(group: Path) -> None:
    write_members(group, [("tom@example.org", "Tom & <b>Jerry</b>", "")])
    add_to_template(
        group,
        "reminder.html",
        '{% autoescape false %}<p class="lead">{{ member.name }}</p>{% endautoescape %}',
    )
    prep, [member] = prepared(group)
    assert_same(prep.build(member, now=NOW).data, per_member(prep, member), member.email)


def test_whole_member_printed(group: Path) -> None:
    """``{{ member }}`` is not a single value: that mailing takes the per-member render."""
    write_members(group, [("ann@example.org", "Ann", "")])
    add_to_template(group, "reminder.html", '<p class="lead">{{ member }}</p>')
    prep, [member] = prepared(group)
    assert_same(prep.build(member, now=NOW).data, per_member(prep, member), member.email)
