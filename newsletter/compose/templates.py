"""Jinja2 + premailer, once per mailing; per member only the few values that differ are filled in.

A mailing is rendered with placeholder markers where member values go (``greeting``,
``unsubscribe_url``, her own links ``rsvp_yes_url``, ``rsvp_no_url`` and ``preferences_url``,
``rsvp_note``, ``member.*``), premailer inlines the CSS of that one render, and the result is
cut into lines.  Filling a member in is then string work on the few lines holding markers.  When a
template uses a member value in logic (``{% if member.name %}``, a filter, a comparison) markers
alone would give wrong output: such a mailing is rendered once per distinct outcome of that logic
(``variants``), or, when even that cannot be proved exact, in full for each member.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from newsletter.compose.analysis import (
    SCALAR_NAMES,
    TEXT_SUFFIXES,
    answers,
    member_columns,
    parsed_already,
)
from newsletter.compose.inline import inline_css, inline_shared
from newsletter.compose.render_cache import code_digest
from newsletter.errors import Problem, TemplateError

MARKER = "NLSLOT{:03d}QZX"
MARKER_RE = re.compile(r"NLSLOT(\d{3})QZX")
_BREAK = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is only spacing; CR, LF and the rest are not
_ATTR_SAFE = re.compile(r"[A-Za-z0-9._~:/?#@!$()*+,;=%-]*")


#: This module as loaded (its escaping rule and environment): part of the compiled templates' key.
_CODE = code_digest(__file__)
#: The environment's settings (besides the loader, the escaping rule and the bytecode cache).
_SETTINGS: dict[str, Any] = {
    "undefined": jinja2.StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
}


def _autoescape(name: str | None) -> bool:
    return not (name or "").endswith(TEXT_SUFFIXES)


class _Environment(jinja2.Environment):
    """Compiles a template from the syntax tree ``analysis`` read already, when it has: a template
    is parsed once per process (Jinja changes no tree it compiles but for folding constants).
    ``render_cache``: the folder where compiled templates and ``analysis``'s answers are kept."""

    render_cache: Path | None = None
    render_cache_settings = ""

    def _parse(self, source: str, name: str | None, filename: str | None) -> jinja2.nodes.Template:
        tree = parsed_already(self, source, name) if name is not None else None
        return tree if tree is not None else super()._parse(source, name, filename)


@functools.lru_cache(maxsize=8)
def make_environment(templates_dir: Path, cache_dir: Path | None = None) -> jinja2.Environment:
    """Strict, autoescaping for every template that is not plain text, whatever its extension;
    ``cache_dir``: the render cache, where compiled templates are kept between runs."""
    bytecode = None
    settings = f"{sorted((k, repr(v)) for k, v in _SETTINGS.items())}|autoescape={TEXT_SUFFIXES}|{_CODE}"
    if cache_dir is not None:
        from newsletter.compose.render_cache import bytecode_cache

        bytecode = bytecode_cache(cache_dir, settings)
    env = _Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=_autoescape,
        bytecode_cache=bytecode,
        **_SETTINGS,
    )
    env.render_cache, env.render_cache_settings = cache_dir, settings
    return env


@dataclass(frozen=True)
class Slot:
    """A member value at one place in the output; ``attr`` when inside an HTML tag's attribute."""

    index: int
    attr: bool = False


Line = str | tuple[str | Slot, ...]


@dataclass(frozen=True)
class Body:
    """A rendered part as lines; lines holding member values are kept as segments to fill in."""

    lines: tuple[Line, ...]
    html: bool

    def fill(self, line: tuple[str | Slot, ...], values: tuple[str, ...]) -> str:
        out = []
        for seg in line:
            if isinstance(seg, str):
                out.append(seg)
            else:
                out.append(_escape_like_lxml(values[seg.index], seg.attr) if self.html else values[seg.index])
        return "".join(out)

    @functools.cached_property
    def attr_slots(self) -> frozenset[int]:
        """Slots that sit inside an HTML attribute (worked out once per mailing)."""
        return frozenset(
            seg.index
            for line in self.lines
            if not isinstance(line, str)
            for seg in line
            if isinstance(seg, Slot) and seg.attr
        )

    def text(self, values: tuple[str, ...]) -> str:
        return "\n".join(line if isinstance(line, str) else self.fill(line, values) for line in self.lines)


def _escape_like_lxml(value: str, attr: bool) -> str:
    # The same escaping lxml's HTML serialiser (behind premailer) applies, so a filled-in value is
    # byte-for-byte what a full per-member render would give.
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value.replace('"', "&quot;") if attr else value


def split_body(text: str, *, html: bool) -> Body:
    lines: list[Line] = []
    for raw in text.split("\n"):
        if "NLSLOT" not in raw:
            lines.append(raw)
            continue
        segs: list[str | Slot] = []
        pos = 0
        for match in MARKER_RE.finditer(raw):
            if match.start() > pos:
                segs.append(raw[pos : match.start()])
            # Inside a tag when the last '<' before the marker is after the last '>'.
            before = raw[: match.start()]
            segs.append(Slot(int(match.group(1)), attr=html and before.rfind("<") > before.rfind(">")))
            pos = match.end()
        if pos < len(raw):
            segs.append(raw[pos:])
        lines.append(tuple(segs))
    return Body(tuple(lines), html)


class _Recorder:
    """Stands in for a member while rendering once: hands out a marker for every value asked for."""

    def __init__(self, slots: list[str], prefix: str) -> None:
        self._slots = slots
        self._prefix = prefix

    def _marker(self, key: str) -> str:
        name = f"{self._prefix}{key}"
        if name not in self._slots:
            self._slots.append(name)
        return MARKER.format(self._slots.index(name))

    def __getattr__(self, key: str) -> str:
        if key.startswith("__"):
            raise AttributeError(key)
        return self._marker(key)

    def __getitem__(self, key: str) -> str:
        return self._marker(key)


class _LazyMarker:
    """A member value while rendering once: becomes its marker when printed (``{{ name }}``)."""

    def __init__(self, recorder: _Recorder, name: str) -> None:
        self._recorder, self._name = recorder, name

    def __str__(self) -> str:
        return self._recorder._marker(self._name)

    def __html__(self) -> str:  # printed in an autoescaped template: the marker needs no escaping
        return str(self)


@dataclass(frozen=True)
class RenderedMailing:
    """One mailing rendered once: subject, HTML (CSS inlined) and text with member slots."""

    subject: str
    html: Body
    text: Body
    slots: tuple[str, ...]  # "greeting", "unsubscribe_url", "member.<column>"

    def values(self, member: MemberValues) -> tuple[str, ...]:
        return tuple(member.get(slot) for slot in self.slots)

    def fills_exactly(self, values: tuple[str, ...]) -> bool:
        """Whether filling in gives what a full render would: inside attributes, libxml2 rewrites
        spaces, non-ASCII, quotes and ``&`` (URI-escaping, quote switching), so such a value takes the
        full per-member render instead. URLs and plain addresses, the usual attribute values, pass."""
        return all(_ATTR_SAFE.fullmatch(values[i]) for i in self.html.attr_slots)


@dataclass(frozen=True)
class MemberValues:
    """What differs per member: the greeting, her links (signed for her) and the CSV row.

    ``rsvp_yes_url``, ``rsvp_no_url``, ``preferences_url``: "" when the mail has no such link (no
    NEWSLETTER_PUBLIC_URL, or a meeting that asks nothing); the templates decide whether to show them
    from mailing-wide values (``answers``), never from these.  ``rsvp_note``: a sentence for a member
    who said she would come (a change notice), "" for everyone else.  ``preheader``: the line a mail
    program shows under the subject (the mailing's, or in discreet mode a neutral one).
    """

    greeting: str
    unsubscribe_url: str
    member: Mapping[str, str]
    rsvp_yes_url: str = ""
    rsvp_no_url: str = ""
    preferences_url: str = ""
    rsvp_note: str = ""
    preheader: str = ""

    def get(self, slot: str) -> str:
        if slot.startswith("member."):
            return self.member.get(slot[len("member.") :], "")
        return str(getattr(self, slot))

    def context(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in SCALAR_NAMES}, "member": dict(self.member)}


class MailRenderer:
    """One kind of mail (reminder, change…) from KIND.html, KIND.txt and KIND.subject.txt."""

    def __init__(
        self,
        env: jinja2.Environment,
        kind: str,
        *,
        inline: Callable[[str], str] = inline_css,
        cache_dir: Path | None = None,
    ) -> None:
        self.env = env
        self.kind = kind
        #: For anything rendered for one member (in memory only: her values never go to disk).
        self._inline = inline
        #: For the shared render (markers where member values go): kept in the render cache.
        self._inline_shared: Callable[[str], str] = (
            (lambda html: inline_shared(html, cache_dir)) if inline is inline_css else inline
        )
        # Worked out once per distinct text of the templates: an edited template is analysed anew.
        self.fast, traceable = answers(env, self._names())
        #: Not ``fast``, but each distinct outcome of the member logic can be rendered once (``variants``).
        self.traceable = traceable

    def inline(self, html: str) -> str:
        """The CSS moved into the tags (premailer)."""
        return self._inline(html)

    def _names(self) -> list[str]:
        return [f"{self.kind}.html", f"{self.kind}.txt", f"{self.kind}.subject.txt"]

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except jinja2.TemplateSyntaxError as err:
            where = f"templates/{err.name or name}"
            raise TemplateError(
                [
                    Problem(
                        where,
                        err.lineno,
                        f"template syntax: {err.message}",
                        "fix the {{ }} / {% %} tags on that line",
                    )
                ]
            ) from err
        except jinja2.UndefinedError as err:
            line = _template_line(err, self.env)
            raise TemplateError(
                [
                    Problem(
                        line[0] or f"templates/{name}",
                        line[1],
                        f"template: {err.message}",
                        "check the spelling of the variable; the README lists what a template can use",
                    )
                ]
            ) from err
        except jinja2.TemplateNotFound as err:
            raise TemplateError(
                [
                    Problem(
                        f"templates/{err.name}",
                        None,
                        "template file is missing",
                        "restore it from the project's templates/ folder",
                    )
                ]
            ) from err

    def subject(self, context: Mapping[str, Any]) -> str:
        raw = self._render(f"{self.kind}.subject.txt", context).strip()
        if found := _BREAK.search(raw):
            # A line break in a subject is an organiser's mistake to report, never to fold away.
            raise TemplateError(
                [
                    Problem(
                        f"templates/{self.kind}.subject.txt",
                        raw[: found.start()].count("\n") + 1,
                        "the subject would contain a line break or control character",
                        "write the whole subject on one line",
                    )
                ]
            )
        subject = " ".join(raw.split())
        if subject and context.get("test"):
            subject = f"[Test] {subject}"  # a test mail must never pass for the real one
        if not subject:
            raise TemplateError(
                [
                    Problem(
                        f"templates/{self.kind}.subject.txt",
                        1,
                        "the subject is empty",
                        "write a subject line in this file",
                    )
                ]
            )
        return subject

    def render_once(self, context: Mapping[str, Any]) -> RenderedMailing:
        subject = self.subject(context)
        slots: list[str] = []
        recorder = _Recorder(slots, "")
        ctx = {
            **context,
            "subject": subject,
            # A marker is handed out (and a slot made) only for a value the templates really print.
            **{name: _LazyMarker(recorder, name) for name in SCALAR_NAMES},
            "member": _Recorder(slots, "member."),
        }
        html = self._inline_shared(self._render(f"{self.kind}.html", ctx))
        text = self._render(f"{self.kind}.txt", ctx)
        return RenderedMailing(
            subject, split_body(html, html=True), split_body(text, html=False), tuple(slots)
        )

    def render_subject(self, context: Mapping[str, Any]) -> RenderedMailing:
        """The mailing's subject alone, for templates rendered per member or per variant."""
        return RenderedMailing(self.subject(context), Body((), html=True), Body((), html=False), ())

    def member_columns(self) -> set[str]:
        """The CSV columns the templates use (``member.x``), whatever branch a member takes."""
        return member_columns(self.env, self._names())

    def render_member(
        self, context: Mapping[str, Any], member: MemberValues, *, inline: bool = True
    ) -> tuple[str, str]:
        """The reference path: a full render and inline for one member (html, text); ``inline``
        False: the HTML as Jinja gives it (to try the templates out)."""
        ctx = {**context, "subject": self.subject(context), **member.context()}
        html = self._render(f"{self.kind}.html", ctx)
        return (self._inline(html) if inline else html), self._render(f"{self.kind}.txt", ctx)


def _template_line(err: Exception, env: jinja2.Environment) -> tuple[str | None, int | None]:
    # Jinja rewrites the traceback so that template frames carry the template's file and line.
    tb = err.__traceback__
    found: tuple[str | None, int | None] = (None, None)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".txt", ".css")) and "templates" in filename:
            found = (
                f"templates/{Path(filename).name}"
                if "/partials/" not in filename
                else f"templates/partials/{Path(filename).name}",
                tb.tb_lineno,
            )
        tb = tb.tb_next
    return found
