"""premailer, once per distinct HTML: the CSS of a rendered mail moved into its tags.

A mailing's renders repeat (a meeting's week-before and day-before reminders give the same HTML;
a variant or a `check` renders the same text again), and premailer re-reads the same stylesheet on
every call: both are remembered here, keyed by their text, so an edited template or stylesheet is
simply a new key (a long-running daemon or console never shows a stale render).  The shared render
of a mailing (markers where member values go, no member's data) is also kept on disk between runs
(``inline_shared``, see ``render_cache``), and so is premailer's reading of its stylesheet: after
one meeting is edited, the new HTML is inlined without cssutils parsing the unchanged stylesheet
(most of a transform).  Anything rendered for one member stays in memory.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsletter.compose.render_cache import code_digest
from newsletter.errors import Problem, TemplateError

if TYPE_CHECKING:
    from newsletter.compose.render_cache import AnswerStore

log = logging.getLogger(__name__)
_CODE = code_digest(__file__)  # the code as loaded: what the answers kept on disk were computed by

#: premailer's options (part of the key of every inlined HTML kept on disk).
OPTIONS: dict[str, Any] = {
    "keep_style_tags": True,
    "strip_important": False,
    "remove_classes": False,
    "disable_validation": True,
    "allow_network": False,
    "cssutils_logging_level": logging.CRITICAL,
}

#: A rule as premailer 3.10 reads it: (specificity, selector, declarations without a last ';').
Rule = tuple[tuple[int, ...], str, str]
Pairs = list[tuple[str, str]]


@functools.lru_cache(maxsize=16)
def inline_shared(html: str, cache_dir: Path | None) -> str:
    """``inline_css`` for the shared render of a mailing (no member's data in it), kept in the
    render cache of ``cache_dir`` between runs (None: in memory only)."""
    if cache_dir is None:
        return inline_css(html)
    from newsletter.compose.render_cache import InlineCache, style_store

    options = f"{sorted(OPTIONS.items())!r}|{_CODE}"
    store = style_store(cache_dir)
    return InlineCache(cache_dir / "inline", options).inlined(html, lambda text: _inline(text, store))


@functools.lru_cache(maxsize=16)
def inline_css(html: str) -> str:
    """Move the stylesheet into style attributes (mail clients drop <style>); keep @media rules."""
    return _inline(html, None)


def _inline(html: str, styles: AnswerStore | None) -> str:
    """premailer's transform of ``html``; its stylesheets read from and kept in ``styles``."""
    try:
        premailer = _premailer_class()(html, **OPTIONS)
        premailer.styles = styles
        return str(premailer.transform())
    except Exception as err:  # premailer raises a zoo of lxml/cssutils errors
        raise TemplateError(
            [
                Problem(
                    "templates/style.css",
                    None,
                    f"CSS could not be inlined: {err}",
                    "check the stylesheet and the HTML templates for syntax errors",
                )
            ]
        ) from err


@functools.cache
def _premailer_class() -> Any:
    premailer = _import_premailer()  # slow to import (lxml, cssutils): only when a mail is really built
    pairs_from_answers = _answer_pairs(premailer.premailer)

    class CachedPremailer(premailer.Premailer):  # type: ignore[misc,name-defined]
        """Premailer that reads each stylesheet once: ``_parse_style_rules`` (a private method of
        premailer 3.10, hence the pin in pyproject.toml) gives only strings and cssutils rules it
        never changes (with keep_style_tags), so its answer for the same text, position and options
        can be shared, in memory and (for shared renders, in ``styles``) on disk."""

        styles: AnswerStore | None = None  # where stylesheets read before are kept (shared renders)

        def __init__(self, html: str, **options: Any) -> None:
            level = options.pop("cssutils_logging_level", None)
            super().__init__(html, **options)
            cssutils = premailer.premailer.cssutils
            if isinstance(cssutils, _CssutilsOnFirstUse):
                cssutils._stand_in_quiet(level)
            elif level:
                cssutils.log.setLevel(level)

        def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
            key = (
                css_body,
                ruleset_index,
                self.keep_style_tags,
                self.strip_important,
                self.exclude_pseudoclasses,
                self.include_star_selectors,
                self.disable_validation,
            )
            found = _STYLE_RULES.get(key)
            if found is None:
                kept = None
                if self.styles is not None and css_body and pairs_from_answers and self.keep_style_tags:
                    kept = _StyleAnswers(self.styles, key, validate=not self.disable_validation)
                found = kept.found() if kept else None
                if found is None:
                    rules, leftover = super()._parse_style_rules(css_body, ruleset_index)
                    found = (tuple(rules), tuple(leftover))
                    if kept:
                        kept.keep(found, pairs_from_answers)
                if len(_STYLE_RULES) >= _STYLE_RULES_KEPT:
                    _STYLE_RULES.clear()
                _STYLE_RULES[key] = found
            return list(found[0]), list(found[1])

    return CachedPremailer


class _StyleAnswers:
    """premailer's reading of one stylesheet, kept on disk as plain data: its rules, the number of
    rules it leaves in the <style> tag (@media, pseudo-classes) and the declarations of each rule
    as ``csstext_to_pairs`` gives them.  Only with keep_style_tags: premailer 3.10 then writes the
    stylesheet's own text back into the tag and never reads the leftover rules themselves, so they
    come back as placeholders (their number kept, as premailer tests whether there are any)."""

    def __init__(self, store: AnswerStore, key: tuple[Any, ...], *, validate: bool) -> None:
        from newsletter.compose.render_cache import INLINING, digest, library_versions

        self.store = store
        self.validate = validate  # as premailer passes it to csstext_to_pairs
        css_body, *position_and_options = key  # the text last: parts of a digest are joined by NULs
        self.key = digest(
            "premailer-style-rules",
            library_versions(*INLINING),
            _CODE,
            *position_and_options,
            css_body,
        )

    def found(self) -> tuple[tuple[Rule, ...], tuple[object, ...]] | None:
        """The answer kept for this stylesheet (its declarations handed to premailer), or None."""
        kept = self.store.get(self.key)
        try:
            answer = kept["answer"]
            if kept["digest"] != _digest(answer):  # a file changed in place (a bad block, an edit)
                return None
            rules = tuple(_rule(item) for item in answer["rules"])
            leftover = answer["leftover"]
            pairs = {bulk: _pairs(found) for bulk, found in answer["pairs"]}
            if type(leftover) is not int or leftover < 0 or {bulk for _, _, bulk in rules} - pairs.keys():
                return None
        except (TypeError, KeyError, ValueError):
            return None
        if len(_PAIRS) + len(pairs) > _PAIRS_KEPT:
            _PAIRS.clear()
        _PAIRS.update(((bulk, self.validate), found) for bulk, found in pairs.items())
        return rules, (_LEFTOVER,) * leftover

    def keep(self, found: tuple[tuple[Any, ...], tuple[Any, ...]], pairs: Any) -> None:
        """``found`` kept, with the declarations of each of its rules (``pairs``: premailer's own
        ``csstext_to_pairs``, memoised in premailer, as its transform will ask for most of them)."""
        rules, leftover = found
        try:
            declarations = [
                [bulk, [list(pair) for pair in pairs(bulk, validate=self.validate)]]
                for bulk in dict.fromkeys(bulk for _, _, bulk in rules)
            ]
        except Exception as err:  # cssutils on a rule premailer itself never merges: not kept
            log.debug("render cache: stylesheet not kept (%s)", err)
            return
        answer = {
            "rules": [[list(specificity), selector, bulk] for specificity, selector, bulk in rules],
            "leftover": len(leftover),
            "pairs": declarations,
        }
        self.store.put(self.key, {"answer": answer, "digest": _digest(answer)})


def _digest(answer: Any) -> str:
    from newsletter.compose.render_cache import digest

    return digest(json.dumps(answer, sort_keys=True))


def _rule(item: Any) -> Rule:
    specificity, selector, bulk = item
    if not (isinstance(selector, str) and isinstance(bulk, str) and isinstance(specificity, list)):
        raise ValueError("not a rule")
    if not all(type(n) is int for n in specificity):
        raise ValueError("not a specificity")
    return tuple(specificity), selector, bulk


def _pairs(found: Any) -> Pairs:
    pairs = [(name, value) for name, value in found]
    if not all(isinstance(name, str) and isinstance(value, str) for name, value in pairs):
        raise ValueError("not a declaration")
    return pairs


class _Leftover:
    """A rule premailer leaves in the <style> tag, read from the render cache: never looked into."""

    def __repr__(self) -> str:
        return "<leftover rule, kept in the stylesheet's own text>"


_LEFTOVER = _Leftover()


def _answer_pairs(module: types.ModuleType) -> Any:
    """premailer's ``csstext_to_pairs`` (the declarations of a rule, as cssutils reads them),
    answered first from the stylesheets read from the render cache, or None if premailer is not
    the version this is written for.  premailer.premailer looks the name up in its namespace at
    each call, so one wrapper there serves its transform; merge_styles (which reads an element's
    own style attribute with it) keeps the original.  A wrapper, rather than seeding premailer's
    function_cache: that cache is a 128-entry LFU shared by three functions, keyed by cachetools'
    scheme, and would evict the answers (or other functions' entries) on a larger stylesheet."""
    from premailer import merge_style

    original: Any = getattr(module, "csstext_to_pairs", None)
    if getattr(original, "from_answers", False):
        return original.__wrapped__
    if original is not merge_style.csstext_to_pairs:
        return None

    @functools.wraps(original)
    def csstext_to_pairs(csstext: str, validate: bool = True) -> Pairs:
        found = _PAIRS.get((csstext, validate))
        return found if found is not None else original(csstext, validate=validate)

    csstext_to_pairs.from_answers = True  # type: ignore[attr-defined]
    module.csstext_to_pairs = csstext_to_pairs  # type: ignore[attr-defined]
    return original


class _OnFirstUse(types.ModuleType):
    """Stands for a module until an attribute of it is first asked for, then imports it for real."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(self._stand_in_module(), attr)

    def _stand_in_module(self) -> types.ModuleType:
        return importlib.import_module(self.__name__)


class _CssutilsOnFirstUse(_OnFirstUse):
    """cssutils for premailer, imported when premailer first parses CSS with it: with the
    stylesheet's reading answered from the render cache, a new mail without style attributes of
    its own never does.  premailer sets cssutils' log level at each construction (which would load
    it): ``CachedPremailer`` hands the level here instead, set before cssutils' next use."""

    _stand_in_level: int | None = None
    _stand_in_pending = False

    def _stand_in_quiet(self, level: int | None) -> None:
        self._stand_in_level, self._stand_in_pending = level, bool(level)

    def _stand_in_module(self) -> types.ModuleType:
        module = importlib.import_module(self.__name__)
        if self._stand_in_pending:
            self._stand_in_pending = False
            module.log.setLevel(self._stand_in_level)
        return module


def _import_premailer() -> Any:
    """premailer, without loading `requests` (~70 ms of a `check`) or cssutils (~60 ms): premailer
    imports `requests` only to fetch external stylesheets, which allow_network=False never does,
    and cssutils only to parse CSS (see ``_CssutilsOnFirstUse``).  Each stands in ``sys.modules``
    for the time of the import only, as a module-level name of premailer's that imports the real
    library on first use: nothing behaves differently, and nothing else sees a stand-in."""
    if "premailer.premailer" in sys.modules:
        import premailer

        return premailer
    stand_ins: dict[str, _OnFirstUse] = {
        name: kind(name)
        for name, kind in (("requests", _OnFirstUse), ("cssutils", _CssutilsOnFirstUse))
        if name not in sys.modules
    }
    sys.modules.update(stand_ins)
    try:
        import premailer
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]
    return premailer


#: premailer's reading of each stylesheet, by its text, position and options (a few are enough).
_STYLE_RULES: dict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
_STYLE_RULES_KEPT = 16
#: The declarations of rules read from the render cache, by their text and cssutils' validation.
_PAIRS: dict[tuple[str, bool], Pairs] = {}
_PAIRS_KEPT = 4096
