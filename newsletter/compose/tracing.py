"""The Jinja environment of a traced render: member values seen only through stand-ins.

The same loader and settings as the mail's environment, with attribute and item access, every filter
and test, every call and every ``{{ … }}`` routed through the rules of ``compose.standins``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jinja2
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.utils import pass_eval_context

from newsletter.compose.standins import STANDINS, Member, Value, real

#: Filters that give a value of their own (str or int) from a member value and constant arguments.
DERIVED = frozenset(
    [
        "upper",
        "lower",
        "title",
        "capitalize",
        "trim",
        "truncate",
        "replace",
        "center",
        "wordwrap",
        "striptags",
        "string",
        "length",
        "count",
        "wordcount",
        "urlencode",
        "indent",
        "first",
        "last",
        "reverse",
        "int",
    ]
)
# Given stand-ins as they are: `default` only asks whether its value is undefined (never a stand-in)
# or true, and returns its value or its argument; these tests answer alike for a stand-in and a str.
_TRANSPARENT_FILTERS = frozenset({"default", "d"})
_TRANSPARENT_TESTS = frozenset({"defined", "undefined", "none"})


@pass_eval_context
def _finalize(eval_ctx: EvalContext, value: Any) -> Any:
    """What ``{{ … }}`` prints: a marker for a stand-in (when filling in is exact), else the value."""
    if isinstance(value, Value):
        return value._trace.printed_as(value, eval_ctx.autoescape)
    if isinstance(value, Member):
        return value._pinned()
    return value


class _TracingContext(Context):
    def call(__self, __obj: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # A function or method gets real values (a macro too: `traceable` leaves none in the templates).
        kept = {k: kwargs.pop(k) for k in ("_loop_vars", "_block_vars") if k in kwargs}
        return super().call(real(__obj), *real(args), **real(kwargs), **kept)


class _TracingEnvironment(jinja2.Environment):
    context_class = _TracingContext

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Member):
            return obj.attribute(self, attribute)
        return super().getattr(real(obj) if isinstance(obj, Value) else obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        argument = real(argument)
        if isinstance(obj, Member):
            return obj.item(self, argument)
        return super().getitem(real(obj) if isinstance(obj, Value) else obj, argument)


def _derive(
    name: str, func: Callable[..., Any], head: tuple[Any, ...], rest: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """``value|name(args)`` as a stand-in for its result, or None (then done on the real value)."""
    value, args, options = rest[0], rest[1:], tuple(sorted(kwargs.items()))
    if any(isinstance(a, STANDINS) for a in (*args, *kwargs.values())):
        return None
    try:
        hash((args, options))
    except TypeError:
        return None
    result = func(*head, value._real, *args, **kwargs)
    if type(result) not in (str, int):
        return None
    ctx = head[0] if head else None
    autoescape = ctx.autoescape if isinstance(ctx, EvalContext) else None
    return Value(("d", value._ref, name, args, options, autoescape), result, value._trace)


def _wrap(name: str, func: Any, *, test: bool) -> Callable[..., Any]:
    pass_arg = getattr(func, "jinja_pass_arg", None)
    lead = 0 if pass_arg is None else 1
    transparent = name in (_TRANSPARENT_TESTS if test else _TRANSPARENT_FILTERS)
    derive = not test and name in DERIVED

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        head, rest = args[:lead], args[lead:]
        if transparent:
            return func(*args, **kwargs)
        if derive and rest and isinstance(rest[0], Value):
            made = _derive(name, func, head, rest, kwargs)
            if made is not None:
                return made
        return func(*head, *real(rest), **real(kwargs))

    if pass_arg is not None:
        wrapper.jinja_pass_arg = pass_arg  # type: ignore[attr-defined]
    return wrapper


@functools.lru_cache(maxsize=8)
def tracing_environment(env: jinja2.Environment) -> jinja2.Environment:
    """``env`` for traced renders: the same loader and settings, stand-in-aware filters and tests."""
    rv = _TracingEnvironment(
        block_start_string=env.block_start_string,
        block_end_string=env.block_end_string,
        variable_start_string=env.variable_start_string,
        variable_end_string=env.variable_end_string,
        comment_start_string=env.comment_start_string,
        comment_end_string=env.comment_end_string,
        line_statement_prefix=env.line_statement_prefix,
        line_comment_prefix=env.line_comment_prefix,
        trim_blocks=env.trim_blocks,
        lstrip_blocks=env.lstrip_blocks,
        newline_sequence=env.newline_sequence,
        keep_trailing_newline=env.keep_trailing_newline,
        optimized=env.optimized,
        undefined=env.undefined,
        finalize=_finalize,
        autoescape=env.autoescape,
        loader=env.loader,
    )
    rv.filters = {name: _wrap(name, func, test=False) for name, func in env.filters.items()}
    rv.tests = {name: _wrap(name, func, test=True) for name, func in env.tests.items()}
    rv.globals = dict(env.globals)
    rv.policies = dict(env.policies)
    return rv
