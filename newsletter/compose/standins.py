"""Stand-ins for a member's values in a traced render (see ``variants``).

A ``Value`` stands in for one member value (or a filter's result from one), a ``Member`` for her CSV
row.  Each answers every question the template asks of it (truth, ``==``/``<``…, length, ``in``,
whether a column exists) with the real value's answer and writes question and answer down in the
``Trace``; printing one prints a marker (``Trace.printed_as``).  A filter from ``DERIVED`` applied
to a ``Value`` gives a ``Value`` for its result.  Anything else done with a stand-in (``~``, a
method, any other filter or test, a call) is done with the real value, and the whole value is
written down ("pin"), so the render is exact for exactly the members with that value.
``compose.tracing`` routes Jinja's attribute access, filters, tests, calls and printing to them.
"""

from __future__ import annotations

import operator
import types
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

from newsletter.compose.templates import MARKER

if TYPE_CHECKING:
    import jinja2

    from newsletter.compose.templates import MemberValues

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "contains": operator.contains,
}

#: A value: ("s", name) of a scalar, ("m",) the row, ("f", column) one of its columns, or
#: ("d", ref, filter, args, kwargs, autoescape) a filter's result from another.
Ref = tuple[Any, ...]
#: (value, operation, type of the argument, argument)
Question = tuple[Ref, str, type, Any]


class Untraceable(BaseException):
    """Stops a traced render (a BaseException, so that no ``except Exception`` in Jinja's code or a
    filter turns it into a different result): this member takes the full render."""


def answer_to(op: str, value: Any, arg: Any) -> Hashable:
    if op == "bool":
        return bool(value)
    if op == "len":
        return len(value)
    if op == "pin":
        return tuple(value.items()) if isinstance(value, Mapping) else value
    return _COMPARE[op](value, arg)  # type: ignore[no-any-return]


class Trace:
    """One member's traced render: the questions asked, in order, with her answers, and the values
    printed as markers (by slot)."""

    def __init__(self, values: MemberValues) -> None:
        self.values = values
        self.answers: dict[Question, Hashable] = {}
        self.slots: dict[Ref, int] = {}
        self.printed = 0
        self.html = True  # rendering the HTML template (else the text one)

    def ask(self, ref: Ref, op: str, arg: Any, value: Any) -> Any:
        question = (ref, op, type(arg), arg)
        try:
            if question in self.answers:
                return self.answers[question]
            answer = answer_to(op, value, arg)
            hash(answer)
        except Exception as err:  # an unhashable argument or answer, or the question raised
            raise Untraceable from err
        self.answers[question] = answer
        return answer

    def printed_as(self, value: Value, autoescape: bool) -> Any:
        # A marker only where filling in gives what printing gives: escaped in HTML, raw in text.
        if autoescape != self.html or type(value._real) not in (str, int):
            return value._pinned()
        self.printed += 1
        return MARKER.format(self.slots.setdefault(value._ref, len(self.slots)))


class Value:
    """A stand-in for one member value (or a filter's result from one): see the module docstring."""

    __slots__ = ("_real", "_ref", "_trace")

    def __init__(self, ref: Ref, real: Any, trace: Trace) -> None:
        self._ref, self._real, self._trace = ref, real, trace

    def _pinned(self) -> Any:
        self._trace.ask(self._ref, "pin", None, self._real)
        return self._real

    def _ask(self, op: str, other: Any) -> Any:
        try:
            plain = not isinstance(other, STANDINS) and hash(other) is not None
        except TypeError:
            plain = False
        if plain:
            return self._trace.ask(self._ref, op, other, self._real)
        return _COMPARE[op](self._pinned(), real(other))

    def __bool__(self) -> bool:
        return bool(self._trace.ask(self._ref, "bool", None, self._real))

    def __len__(self) -> int:
        return int(self._trace.ask(self._ref, "len", None, self._real))

    def __eq__(self, other: object) -> Any:
        return self._ask("eq", other)

    def __ne__(self, other: object) -> Any:
        return self._ask("ne", other)

    def __lt__(self, other: Any) -> Any:
        return self._ask("lt", other)

    def __le__(self, other: Any) -> Any:
        return self._ask("le", other)

    def __gt__(self, other: Any) -> Any:
        return self._ask("gt", other)

    def __ge__(self, other: Any) -> Any:
        return self._ask("ge", other)

    def __contains__(self, item: Any) -> bool:
        return bool(self._ask("contains", item))

    def __hash__(self) -> int:
        return hash(self._pinned())

    def __str__(self) -> str:
        return str(self._pinned())

    def __repr__(self) -> str:
        return repr(self._pinned())

    def __format__(self, spec: str) -> str:
        return format(self._pinned(), spec)

    def __iter__(self) -> Any:
        return iter(self._pinned())

    def __reversed__(self) -> Any:
        return reversed(self._pinned())

    def __getitem__(self, key: Any) -> Any:
        return self._pinned()[real(key)]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._pinned(), name)


def _binary(name: str) -> Callable[[Value, Any], Any]:
    def method(self: Value, other: Any) -> Any:
        mine = self._pinned()
        func = getattr(type(mine), name, None)
        return NotImplemented if func is None else func(mine, real(other))

    return method


def _unary(func: Callable[[Any], Any]) -> Callable[[Value], Any]:
    return lambda self: func(self._pinned())


for _op in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow"):
    setattr(Value, f"__{_op}__", _binary(f"__{_op}__"))
    setattr(Value, f"__r{_op}__", _binary(f"__r{_op}__"))
for _name, _func in (("neg", operator.neg), ("pos", operator.pos), ("abs", abs), ("invert", operator.invert)):
    setattr(Value, f"__{_name}__", _unary(_func))


class Member:
    """A stand-in for ``member`` (her CSV row): each column asked for is a ``Value``."""

    __slots__ = ("_trace",)

    def __init__(self, trace: Trace) -> None:
        self._trace = trace

    def _pinned(self) -> dict[str, str]:
        row = self._trace.values.member
        self._trace.ask(("m",), "pin", None, row)
        return dict(row)

    def _has(self, key: Any) -> bool:
        return bool(self._trace.ask(("m",), "contains", key, self._trace.values.member))

    def _field(self, key: str) -> Value:
        return Value(("f", key), self._trace.values.member[key], self._trace)

    def attribute(self, env: jinja2.Environment, name: str) -> Any:
        """``member.name``, as Environment.getattr does it for a dict: the dict's own attribute
        first (``member.items``), then the column."""
        if hasattr(dict, name):
            return getattr(self._pinned(), name)
        return self._field(name) if self._has(name) else env.undefined(obj={}, name=name)

    def item(self, env: jinja2.Environment, key: Any) -> Any:
        """``member["name"]``, as Environment.getitem does it for a dict: the column first."""
        try:
            hash(key)
        except TypeError:
            return env.undefined(obj={}, name=key)
        if self._has(key):
            return self._field(key)
        if isinstance(key, str) and hasattr(dict, key):
            return getattr(self._pinned(), key)
        return env.undefined(obj={}, name=key)

    def __bool__(self) -> bool:
        return bool(self._pinned())

    def __len__(self) -> int:
        return len(self._pinned())

    def __iter__(self) -> Any:
        return iter(self._pinned())

    def __contains__(self, key: Any) -> bool:
        return real(key) in self._pinned() if isinstance(key, STANDINS) else self._has(key)

    def __eq__(self, other: object) -> bool:
        return bool(self._pinned() == real(other))

    def __ne__(self, other: object) -> bool:
        return bool(self._pinned() != real(other))

    __hash__ = None  # type: ignore[assignment]  # as a dict's

    def __getitem__(self, key: Any) -> Any:
        return (
            self._field(key)
            if not isinstance(key, STANDINS) and self._has(key)
            else self._pinned()[real(key)]
        )

    def __str__(self) -> str:
        return str(self._pinned())

    def __repr__(self) -> str:
        return repr(self._pinned())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._pinned(), name)


STANDINS = (Value, Member)


def real(x: Any) -> Any:
    """``x`` with every stand-in in it replaced by its real value (pinned)."""
    if isinstance(x, STANDINS):
        return x._pinned()
    kind = type(x)
    if kind is list:
        return [real(i) for i in x]
    if kind is tuple:
        return tuple(real(i) for i in x)
    if kind is dict:
        return {real(k): real(v) for k, v in x.items()}
    if kind is slice:
        return slice(real(x.start), real(x.stop), real(x.step))
    if kind is types.GeneratorType:
        return (real(i) for i in x)
    return x
