"""What a mail's templates do with member values, read from their syntax before anything is rendered.

Two questions decide how a mailing is built (see ``templates`` and ``variants``):

- ``member_values_only_printed``: every member value is only printed (``{{ member.name }}``), so
  one render with markers serves every member;
- ``traceable``: the templates use member values in logic, but in no construct that captures
  printed output as a value (``{% set x %}…{% endset %}``, macros, ``{% filter %}``, ``super()``…),
  so a render per distinct outcome of that logic serves every member (``variants``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import jinja2
from jinja2 import nodes

from newsletter.compose.render_cache import code_digest
from newsletter.errors import Problem, TemplateError

if TYPE_CHECKING:
    from newsletter.compose.render_cache import AnswerStore

log = logging.getLogger(__name__)
_CODE = code_digest(__file__)  # the code as loaded: what the answers kept on disk were computed by

#: Member values printed as they are (each one string): the greeting, her own links, and the preview
#: line (``preheader``: neutral in discreet mode).
SCALAR_NAMES = (
    "greeting",
    "unsubscribe_url",
    "rsvp_yes_url",
    "rsvp_no_url",
    "preferences_url",
    "rsvp_note",
    "preheader",
)
#: Names in the template context whose value differs per member.
MEMBER_NAMES = frozenset({"member", *SCALAR_NAMES})
#: Templates that are plain text (no autoescaping), whatever else they hold.
TEXT_SUFFIXES = (".txt", ".css", ".ics")

# Constructs whose printed output becomes a value the template can test or transform: a member
# value printed inside one would be a marker in that value, so such templates are not traced.
_CAPTURES = (
    nodes.Macro,
    nodes.CallBlock,
    nodes.AssignBlock,
    nodes.FilterBlock,
    nodes.Import,
    nodes.FromImport,
)
_CAPTURING_CALLS = frozenset({"super", "caller", "loop", "varargs", "kwargs"})


def parsed_templates(env: jinja2.Environment, names: Iterable[str]) -> Iterator[tuple[str, nodes.Template]]:
    """Each template of ``names`` and every one they extend, include or import, parsed."""
    for name, source in template_sources(env, names):
        yield name, _parse(env, source, name)[0]


def template_sources(env: jinja2.Environment, names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """The text of each template of ``names`` and of every one they extend, include or import, as
    the files hold it now: the key of any answer about them (an edited file is a new key)."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            source = env.loader.get_source(env, name)[0] if env.loader else ""
        except jinja2.TemplateNotFound:
            continue
        found.append((name, source))
        todo.extend(_refs(env, source, name))
    return tuple(found)


def _kept(env: jinja2.Environment, what: str, *parts: object) -> tuple[AnswerStore | None, str]:
    """Where an answer about template texts is kept between runs (the environment's render cache,
    if it has one), and its key: the texts, the question, this module's code and Jinja's version."""
    folder = getattr(env, "render_cache", None)
    if folder is None:
        return None, ""
    from newsletter.compose.render_cache import answer_store, digest

    settings = getattr(env, "render_cache_settings", "")
    key = digest(what, _CODE, jinja2.__version__, settings, *parts)
    return answer_store(folder), key


def _refs(env: jinja2.Environment, source: str, name: str) -> tuple[str, ...]:
    """The templates a template's text names (from the render cache when it knows: no parse)."""
    if (env, source, name) in _PARSED:
        return _PARSED[(env, source, name)][1]
    store, key = _kept(env, "refs", name, source)
    found = store.get(key) if store else None
    if isinstance(found, list) and all(isinstance(ref, str) for ref in found):
        return tuple(found)
    refs = _parse(env, source, name)[1]
    if store:
        store.put(key, list(refs))
    return refs


#: The syntax trees read so far, by environment, text and name (the most recent few).
_PARSED: dict[tuple[jinja2.Environment, str, str], tuple[nodes.Template, tuple[str, ...]]] = {}
_PARSED_KEPT = 64


def parsed_already(env: jinja2.Environment, source: str, name: str) -> nodes.Template | None:
    """The syntax tree of this text read here before, if it was: Jinja compiles it (see
    ``templates._Environment``) rather than parsing the same text a second time."""
    found = _PARSED.get((env, source, name))
    return found[0] if found is not None else None


def _parse(env: jinja2.Environment, source: str, name: str) -> tuple[nodes.Template, tuple[str, ...]]:
    """A template's syntax tree and the templates it names, by its text (read-only here: shared)."""
    key = (env, source, name)
    found = _PARSED.get(key)
    if found is None:
        found = _parse_anew(env, source, name)
        if len(_PARSED) >= _PARSED_KEPT:
            del _PARSED[next(iter(_PARSED))]
        _PARSED[key] = found
    return found


def _parse_anew(env: jinja2.Environment, source: str, name: str) -> tuple[nodes.Template, tuple[str, ...]]:
    try:
        tree = env.parse(source, name)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(
            [
                Problem(
                    f"templates/{name}",
                    err.lineno,
                    f"template syntax: {err.message}",
                    "fix the {{ }} / {% %} tags on that line",
                )
            ]
        ) from err
    refs: list[str] = []
    for ref in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        template = getattr(ref, "template", None)
        if isinstance(template, nodes.Const) and isinstance(template.value, str):
            refs.append(template.value)
    return tree, tuple(refs)


def answers(env: jinja2.Environment, names: Iterable[str]) -> tuple[bool, bool]:
    """``member_values_only_printed`` and (when not) ``traceable`` of the templates as they are
    now, worked out once per distinct text of every template reached."""
    names = tuple(names)
    sources = template_sources(env, names)
    store, key = _kept(env, "answers", names, sources)
    found = store.get(key) if store else None
    if isinstance(found, list) and len(found) == 2 and all(isinstance(x, bool) for x in found):
        return found[0], found[1]
    fast, traceable = _answers(env, names, sources)
    if store:
        store.put(key, [fast, traceable])
    return fast, traceable


@functools.lru_cache(maxsize=32)
def _answers(
    env: jinja2.Environment, names: tuple[str, ...], sources: tuple[tuple[str, str], ...]
) -> tuple[bool, bool]:
    trees = [(name, _parse(env, source, name)[0]) for name, source in sources]
    fast = _only_printed(trees)
    return fast, not fast and _traceable(env, trees)


def member_values_only_printed(env: jinja2.Environment, names: Iterable[str]) -> bool:
    """True when member values appear only as ``{{ x }}`` output, so markers give exact output."""
    return _only_printed(list(parsed_templates(env, names)))


def _only_printed(trees: list[tuple[str, nodes.Template]]) -> bool:
    # super(), self.<block>(), caller() and loop() return printed output as a value: with one of
    # them anywhere, a printed member value could be a marker in a value the template tests.
    capturing = any(_capturing_call(tree) for _, tree in trees)
    for name, tree in trees:
        printed: set[int] = set()
        for output in tree.find_all(nodes.Output):
            for expr in output.nodes:
                # `member.name` / `member["x"]` print one value; a bare `{{ member }}` prints the row.
                if isinstance(expr, nodes.Getattr | nodes.Getitem) and isinstance(expr.node, nodes.Name):
                    printed.add(id(expr.node))
                elif isinstance(expr, nodes.Name) and expr.name != "member":
                    printed.add(id(expr))
        if not name.endswith(TEXT_SUFFIXES):
            # Inside {% autoescape false %} an HTML template prints a value raw, where filling in
            # would escape it: such a value is not "only printed" in the sense the fast path needs.
            for block in tree.find_all((nodes.EvalContextModifier, nodes.ScopedEvalContextModifier)):
                printed -= {id(n) for n in block.find_all(nodes.Name)}
        # Printed inside a macro, {% call %}, {% set %}…{% endset %} or {% filter %}, a value becomes
        # part of a value (`{% filter upper %}` would upper-case the marker, not her name).
        for capture in tree.find_all(_CAPTURES):
            printed -= {id(n) for n in capture.find_all(nodes.Name)}
        if capturing:
            printed = set()
        for name_node in tree.find_all(nodes.Name):
            if name_node.name in MEMBER_NAMES and id(name_node) not in printed:
                log.info("templates/%s uses a member value in logic: rendering once per variant", name)
                return False
    return True


def traceable(env: jinja2.Environment, names: Iterable[str]) -> bool:
    """True when no construct of the templates turns printed output into a value (see the module's
    docstring), none picks a template or the escaping from an expression, and the environment has no
    extensions: then a render traced with stand-ins for member values is exact for every member whose
    values give the same answers."""
    return _traceable(env, list(parsed_templates(env, names)))


def _traceable(env: jinja2.Environment, trees: list[tuple[str, nodes.Template]]) -> bool:
    if env.extensions or env.finalize is not None:
        return False
    for name, tree in trees:
        why = _untraceable(tree)
        if why:
            log.info("templates/%s %s: rendering each member in full", name, why)
            return False
    return True


def _untraceable(tree: nodes.Template) -> str:
    if next(iter(tree.find_all(_CAPTURES)), None) is not None:
        return "uses a macro, {% call %}, {% import %}, {% filter %} or {% set %}…{% endset %}"
    if any(loop.recursive for loop in tree.find_all(nodes.For)):
        return "has a recursive loop"
    if _capturing_call(tree):
        return "calls super(), caller(), loop() or self.<block>()"
    for ref in tree.find_all((nodes.Extends, nodes.Include)):
        if not isinstance(getattr(ref, "template", None), nodes.Const):
            return "names a template with an expression"
    for block in tree.find_all((nodes.EvalContextModifier, nodes.ScopedEvalContextModifier)):
        if any(not isinstance(option.value, nodes.Const) for option in block.options):
            return "sets autoescaping with an expression"
    return ""


def _capturing_call(tree: nodes.Template) -> bool:
    for call in tree.find_all(nodes.Call):
        callee = call.node
        if isinstance(callee, nodes.Name) and callee.name in _CAPTURING_CALLS:
            return True
        if (
            isinstance(callee, nodes.Getattr)
            and isinstance(callee.node, nodes.Name)
            and callee.node.name == "self"
        ):
            return True
    return False


def member_columns(env: jinja2.Environment, names: Iterable[str]) -> set[str]:
    """The columns the templates name as ``member.x`` or ``member["x"]`` (a dict's own attributes,
    ``member.items``, are not columns)."""
    return set(_member_columns(env, template_sources(env, names)))


@functools.lru_cache(maxsize=32)
def _member_columns(env: jinja2.Environment, sources: tuple[tuple[str, str], ...]) -> frozenset[str]:
    found: set[str] = set()
    for name, source in sources:
        for node in _parse(env, source, name)[0].find_all((nodes.Getattr, nodes.Getitem)):
            owner = getattr(node, "node", None)
            if not (isinstance(owner, nodes.Name) and owner.name == "member"):
                continue
            key = getattr(node, "attr", None) or getattr(getattr(node, "arg", None), "value", None)
            if isinstance(key, str) and not hasattr(dict, key):
                found.add(key)
    return frozenset(found)
