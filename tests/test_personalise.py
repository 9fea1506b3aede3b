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


def test_member_value_in_logic_renders_each_outcome_once(group: Path) -> None:
    write_members(group, [("zoe@example.org", "Zoë & Co", "x"), ("noname@example.org", "", "")])
    add_to_template(
        group,
        "reminder.html",
        '{% if member.name %}<p class="lead">Welcome back, {{ member.name }}!</p>'
        '{% else %}<p class="lead">Welcome, friend!</p>{% endif %}',
    )
    prep, [named, unnamed] = prepared(group)
    assert not prep.renderer.fast and prep.variants is not None  # markers would make every `if` true
    for member, expected in ((named, "Welcome back, Zoë &amp; Co!"), (unnamed, "Welcome, friend!")):
        data = prep.build(member, now=NOW).data
        assert_same(data, per_member(prep, member), member.email)
        assert expected in " ".join(parts(data)[1].split())
    assert (prep.variants.renders, prep.variants.full) == (2, 0)
    # What rendering once with markers would give: the wrong branch for a member with no name.
    once = prep.renderer.render_once(prep.context)
    assert "Welcome back, [member.name]!" in once.html.text(tuple(f"[{slot}]" for slot in once.slots))


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


# --- personalised templates, byte for byte -------------------------------------------------------

#: (HTML after the greeting, text after the greeting, distinct renders the TRICKY members need)
PERSONALISED = {
    "if-name-and-city": (
        '{% if member.name %}<p class="lead">Welcome back, {{ member.name }} of {{ member.city }}!</p>'
        '{% else %}<p class="lead">Welcome, friend!</p>{% endif %}',
        "{% if member.city %}From {{ member.city }}.{% else %}From somewhere.{% endif %}\n",
        2,  # name and city; neither
    ),
    "filters-printed": (
        '<p class="lead">{{ member.name|upper }} / {{ member.city|title }} / {{ member.name|truncate(15) }}'
        " / {{ member.city|replace('&', 'and') }} / {{ member.name|length }}"
        " / {{ member.city|striptags }}</p>",
        "{{ member.name|wordwrap(12) }}\n{{ member.city|indent(4, first=true) }}\n"
        "{{ member.name|center(40) }}\n",
        1,
    ),
    "default-and-or": (
        "<p class=\"lead\">{{ member.name|default('friend', true)|title }}, "
        "{{ member.city or 'nowhere' }}, {{ member.name if member.name|length < 10 else 'you' }}</p>",
        "{{ member.name|default('friend', true)|upper }}\n",
        3,  # no name (and no city); a short name; a long one
    ),
    "equals-in-html-attribute": (
        '<p class="lead {% if member.city == "Taylors" %}local{% endif %}">'
        '<a title="{{ member.name|lower }}" href="mailto:{{ member.email }}">{{ member.city|upper }}</a></p>',
        "",
        2,
    ),
}


def _personalised(group: Path, case: str) -> tuple[Prepared, list[Subscriber], int]:
    html, text, renders = PERSONALISED[case]
    write_members(group, TRICKY)
    add_to_template(group, "reminder.html", html)
    add_to_template(group, "reminder.txt", text)
    prep, members = prepared(group)
    assert not prep.renderer.fast and prep.variants is not None
    return prep, members, renders


@pytest.mark.parametrize("case", list(PERSONALISED))
def test_personalised_templates_byte_for_byte(group: Path, case: str) -> None:
    prep, members, renders = _personalised(group, case)
    for member in members:
        assert_same(prep.build(member, now=NOW).data, per_member(prep, member), member.email)
    assert prep.variants is not None and prep.variants.renders == renders
    # The member whose city looks like a marker prints it as a value, not a marker: never misread.
    assert prep.variants.full == 0


def test_a_value_looking_like_a_marker_printed_whole(group: Path) -> None:
    """A value printed whole into a render (here through ``~``) is checked for marker look-alikes:
    the member named "NLSLOT000QZX" takes the full render, the others their own renders."""
    write_members(group, TRICKY)
    add_to_template(group, "reminder.html", '<p class="lead">{{ member.name ~ "!" }}</p>')
    prep, members = prepared(group)
    for member in members:
        assert_same(prep.build(member, now=NOW).data, per_member(prep, member), member.email)
    assert prep.variants is not None
    assert (prep.variants.renders, prep.variants.full) == (len(TRICKY) - 1, 1)


def test_beyond_the_limit_members_are_rendered_in_full(group: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from newsletter.compose import variants

    monkeypatch.setattr(variants, "MAX_VARIANTS", 3)
    write_members(group, TRICKY[:6])
    add_to_template(group, "reminder.html", '<p class="lead">{{ member.name.split()|first }}</p>')
    prep, members = prepared(group)
    for member in members:
        assert_same(prep.build(member, now=NOW).data, per_member(prep, member), member.email)
    assert prep.variants is not None
    assert (prep.variants.renders, prep.variants.full) == (3, 3)


def test_a_thousand_members_two_renders(group: Path) -> None:
    rows = [
        (f"m{i}@example.org", "" if i % 7 == 0 else f"Member {i} O'Neil & Co", f"City {i % 13}")
        for i in range(1000)
    ]
    write_members(group, rows)
    add_to_template(
        group,
        "reminder.html",
        '{% if member.name %}<p class="lead">Welcome back, {{ member.name|title }}!</p>'
        '{% else %}<p class="lead">Welcome, friend!</p>{% endif %}',
    )
    prep, members = prepared(group)
    built = [prep.build(member, now=NOW).data for member in members]
    assert prep.variants is not None and (prep.variants.renders, prep.variants.full) == (2, 0)
    for i in (0, 1, 500, 994, 999):
        assert_same(built[i], per_member(prep, members[i]), members[i].email)


# --- which templates take which path (read from their syntax) ------------------------------------


@pytest.mark.parametrize(
    ("source", "fast", "traced"),
    [
        ("{{ member.name }} {{ greeting }}", True, False),
        ("{% if member.name %}{{ member.name }}{% endif %}", False, True),
        ("{{ member.name|upper }}", False, True),
        ("{% for c in member.name %}{{ c }}{% endfor %}", False, True),
        ("{% set n = member.name %}{{ n }}", False, True),
        # output turned into a value: a marker there would be wrong, and tracing cannot see it
        ("{% filter upper %}{{ member.name }}{% endfilter %}", False, False),
        ("{% set who %}{{ member.name }}{% endset %}{{ who|length }}", False, False),
        ("{% macro m() %}{{ member.name }}{% endmacro %}{{ m()|upper }}", False, False),
        ("{% macro m(n) %}{{ n }}{% endmacro %}{{ m(member.name) }}", False, False),
        (
            "{% macro m() %}{{ caller(1) }}{% endmacro %}{% call(x) m() %}{{ member.name }}{% endcall %}",
            False,
            False,
        ),
        ("{% block b %}{{ member.name }}{% endblock %}{{ self.b()|upper }}", False, False),
        (
            "{% for x in [1] recursive %}{{ member.name }}{% endfor %}{% if member.name %}{% endif %}",
            False,
            False,
        ),
        ("{% include member.name %}", False, False),
        ("{% autoescape member.name %}{{ member.name }}{% endautoescape %}", False, False),
    ],
)
def test_what_a_template_does_with_member_values(source: str, fast: bool, traced: bool) -> None:
    import jinja2

    from newsletter.compose.analysis import member_values_only_printed, traceable

    env = jinja2.Environment(loader=jinja2.DictLoader({"t.html": source}), autoescape=True)
    assert member_values_only_printed(env, ["t.html"]) is fast
    assert (not fast and traceable(env, ["t.html"])) is traced


def test_a_mistake_in_a_personalised_template_stops_the_mailing_before_any_is_built(group: Path) -> None:
    from newsletter.errors import TemplateError

    write_members(group, TRICKY[:2])
    add_to_template(
        group, "reminder.html", '{% if member.name %}<p class="lead">{{ meeting.date_txt }}</p>{% endif %}'
    )
    with pytest.raises(TemplateError) as caught:
        prepared(group)
    assert "date_txt" in str(caught.value) and "templates/reminder.html" in str(caught.value)


#: What a template may do with member values, each traced with stand-ins and compared byte for byte
#: with the full per-member render for every TRICKY member.
SNIPPETS = [
    "{{ member.name[:3] }} {{ member.name.upper() }} {{ member.name * 2 }} {{ member.name + '!' }}",
    "{% if member.name is string %}s{% endif %} {{ member.name|string|length }} {{ member.name|wordcount }}",
    "{{ member|length }} {% for k in member %}{{ k }},{% endfor %} {{ member.items()|list|length }}",
    "{% set n = member.name %}{% if n and n != 'Pat' %}{{ n|upper }}{% endif %}",
    "{{ member.name|replace('&', 'and')|truncate(10, true) }} {{ member.name|center(30)|replace(' ', '.') }}",
    "{{ (member.name ~ ' ')|trim }} {{ '%s!'|format(member.name) }} {{ member.name|default(member.email) }}",
    "{{ [member.name, member.city]|join(', ') }} {{ [member.city, 'zed', 'Alpha']|sort|first }}",
    "{% if member.name|lower in ['pat', 'zoë martin'] %}known{% endif %}"
    " {% if member.name > 'M' %}late{% endif %}",
    "{{ member.name|int }} {{ member.city|int(7) }} {{ member.name|length * 2 }} {{ -(member.name|length) }}",
    '<a href="https://example.org/?n={{ member.name|urlencode }}">{{ member.email|truncate(8) }}</a>',
    "{% with n = member.name|title %}{{ n }}{% endwith %} {{ member['city']|upper }}"
    " {{ member.get('city') }}",
    "{{ member.name is defined }} {{ member.name == member.city }} {{ member.name is none }}",
    "{{ member.name|safe }} {{ member.name|escape }} {{ member.name|forceescape }} {{ member.name|e|upper }}",
    "{{ member.name|striptags|title }} {{ member.name|reverse }} {{ member.name|map('upper')|join }}",
    "{% for ch in member.name|list %}{% if loop.first %}{{ ch }}{% endif %}{% endfor %}",
    "{% if \"O'\" in member.name %}irish{% endif %} {{ member.name|replace(member.city, 'X') }}",
    "{{ member.name if member.name|length > 10 else member.city|default('none', true) }}",
    "{% for w in (member.name or 'a b').split() %}{{ loop.index }}:{{ w|capitalize }} {% endfor %}",
    "{{ greeting|replace('Dear', 'Hi') }} {% if unsubscribe_url.startswith('mailto:') %}m{% endif %}",
    "{% set ns = namespace(n=member.name) %}{{ ns.n }} {{ dict(a=member.city).a }}"
    " {{ range(member.name|length)|list|length }}",
]


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_stand_ins_answer_as_the_values_do(group: Path, snippet: str) -> None:
    write_members(group, TRICKY)
    add_to_template(group, "reminder.html", f'<p class="lead">{snippet}</p>')
    add_to_template(
        group, "reminder.txt", snippet.replace("{{", "{{ '' ~ ") if "|safe" in snippet else snippet
    )
    prep, members = prepared(group)
    assert prep.variants is not None
    for member in members:
        assert_same(prep.build(member, now=NOW).data, per_member(prep, member), member.email)
