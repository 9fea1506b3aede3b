"""Personalised templates: one render per distinct outcome of the logic on member values.

A template that uses a member value in logic (``{% if member.name %}``, ``{% if member.city ==
"Taylors" %}``, ``{{ member.name|default("friend", true)|title }}``) cannot be rendered once with
markers for everyone, but its logic has only a few outcomes among thousands of members.  So:

- A member's values go into a render as stand-ins (``standins.Value`` and ``Member``) that answer
  each question the template asks of them with her real value's answer and write question and
  answer down (``standins.Trace``); printed, they print markers, filled in per member afterwards as
  in the one-render path.
- The template program is deterministic, so another member whose values give the same answers to
  the same questions gets the same output, with her values filled in at the markers.  The questions
  form a decision tree (``_Node``): per member the questions along one path are answered with her
  values, and the leaf holds the render, inlined by premailer once.  A new path is traced with her
  values and added.
- Whatever cannot be traced (an exception, markers the count does not account for, a value of
  another type) takes the full per-member render, as before; so do members needing a render beyond
  the first ``MAX_VARIANTS``, and, after ``MAX_FAILED`` traces that could not be used, all members
  on paths not seen yet.  Templates with constructs that turn printed output into a value (macros,
  ``{% set %}`` blocks…) are never traced (``analysis.traceable``).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2.nodes import EvalContext

from newsletter.compose.analysis import SCALAR_NAMES
from newsletter.compose.standins import (
    Member,
    Question,
    Ref,
    Trace,
    Untraceable,
    Value,
    answer_to,
)
from newsletter.compose.templates import MARKER_RE, MailRenderer, MemberValues, RenderedMailing, split_body
from newsletter.compose.tracing import tracing_environment

log = logging.getLogger(__name__)

#: Distinct renders kept per mailing; members needing another one are rendered in full.
MAX_VARIANTS = 64
#: Traces that could not be used before a mailing stops tracing (each costs a render).
MAX_FAILED = 8


@dataclass(frozen=True)
class _Variant:
    refs: tuple[Ref, ...]  # the value of each slot, in slot order
    rendered: RenderedMailing


class _Node:
    """A point in the decision tree: the next question, or (a leaf) the render."""

    __slots__ = ("children", "question", "variant")

    def __init__(self) -> None:
        self.question: Question | None = None
        self.children: dict[tuple[type, Hashable], _Node] = {}
        self.variant: _Variant | None = None


class Variants:
    """One mailing's renders, one per distinct outcome of its logic on member values."""

    def __init__(self, renderer: MailRenderer, context: Mapping[str, Any], subject: str) -> None:
        self.renderer = renderer
        self.tracing = tracing_environment(renderer.env)
        self.context = {**context, "subject": subject}
        self.subject = subject
        self.root = _Node()
        self.renders = 0  # traced renders kept in the tree
        self.full = 0  # members left to the full render
        self.failed = 0  # traces that could not be used
        self._inlined: dict[str, str] = {}

    def fill(self, values: MemberValues) -> tuple[RenderedMailing, tuple[str, ...]] | None:
        """Her render and the values of its slots; None: render her in full."""
        memo: dict[Ref, Any] = {}
        try:
            variant = self._find(values, memo) or self._trace(values)
            filled = self._slot_values(variant, values, memo) if variant is not None else None
        except Exception:  # a filter that fails on her value: the full render says what is wrong
            variant = filled = None
        if variant is None or filled is None:
            self.full += 1
            return None
        return variant.rendered, filled

    def _resolve(self, ref: Ref, values: MemberValues, memo: dict[Ref, Any]) -> Any:
        kind = ref[0]
        if kind == "s":
            return getattr(values, ref[1])
        if kind == "m":
            return values.member
        if kind == "f":
            return values.member[ref[1]]
        if ref not in memo:
            _, base, name, args, options, autoescape = ref
            ctx = EvalContext(self.renderer.env)
            if autoescape is not None:
                ctx.autoescape = autoescape
            value = self._resolve(base, values, memo)
            memo[ref] = self.renderer.env.call_filter(name, value, args, dict(options), eval_ctx=ctx)
        return memo[ref]

    def _find(self, values: MemberValues, memo: dict[Ref, Any]) -> _Variant | None:
        node: _Node | None = self.root
        while node is not None and node.variant is None:
            if node.question is None:
                return None
            ref, op, _, arg = node.question
            answer = answer_to(op, self._resolve(ref, values, memo), arg)
            node = node.children.get((type(answer), answer))
        return node.variant if node is not None else None

    def _slot_values(
        self, variant: _Variant, values: MemberValues, memo: dict[Ref, Any]
    ) -> tuple[str, ...] | None:
        out = []
        for ref in variant.refs:
            value = self._resolve(ref, values, memo)
            if type(value) is str:
                out.append(value)
            elif type(value) is int:
                out.append(str(value))
            else:
                return None
        return tuple(out)

    def _trace(self, values: MemberValues) -> _Variant | None:
        if self.renders >= MAX_VARIANTS or self.failed >= MAX_FAILED:
            return None
        try:
            variant = self._traced(values)
        except Exception:  # premailer failed: the full render reports it
            variant = None
        if variant is None:
            self.failed += 1
        if self.renders == MAX_VARIANTS or self.failed == MAX_FAILED:
            log.info(
                "templates/%s.html: %d renders, %d traces not used: the members not covered yet are "
                "rendered in full",
                self.renderer.kind,
                self.renders,
                self.failed,
            )
        return variant

    def _traced(self, values: MemberValues) -> _Variant | None:
        trace = Trace(values)
        scalars = {name: Value(("s", name), getattr(values, name), trace) for name in SCALAR_NAMES}
        ctx = {**self.context, **scalars, "member": Member(trace)}
        kind = self.renderer.kind
        try:
            html = self.tracing.get_template(f"{kind}.html").render(ctx)
            in_html, trace.html = trace.printed, False
            text = self.tracing.get_template(f"{kind}.txt").render(ctx)
        except (Untraceable, Exception):
            return None
        # Every marker in the output must be one printed for a stand-in (a member's value could
        # look like one), and there are at most 1,000.
        if (
            len(MARKER_RE.findall(html)) != in_html
            or len(MARKER_RE.findall(text)) != trace.printed - in_html
            or len(trace.slots) > 999
        ):
            return None
        if html not in self._inlined:
            self._inlined[html] = self.renderer.inline(html)
        names = tuple(_slot_name(ref) for ref in trace.slots)
        rendered = RenderedMailing(
            self.subject, split_body(self._inlined[html], html=True), split_body(text, html=False), names
        )
        variant = _Variant(tuple(trace.slots), rendered)
        self._insert(trace.answers, variant)
        return variant

    def _insert(self, answers: Mapping[Question, Hashable], variant: _Variant) -> None:
        node = self.root
        for question, answer in answers.items():
            if node.variant is not None or (node.question is not None and node.question != question):
                return  # not the path the tree expects: keep this render for her alone
            node.question = question
            node = node.children.setdefault((type(answer), answer), _Node())
        if node.question is None and node.variant is None:
            node.variant = variant
            self.renders += 1


def _slot_name(ref: Ref) -> str:
    if ref[0] == "s":
        return str(ref[1])
    if ref[0] == "f":
        return f"member.{ref[1]}"
    return f"{_slot_name(ref[1])}|{ref[2]}" if ref[0] == "d" else "member"
