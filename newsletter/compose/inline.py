"""premailer, once per distinct HTML: the CSS of a rendered mail moved into its tags.

A mailing's renders repeat (a meeting's week-before and day-before reminders give the same HTML;
a variant or a `check` renders the same text again), and premailer re-reads the same stylesheet on
every call: both are remembered here, keyed by their text, so an edited template or stylesheet is
simply a new key (a long-running daemon or console never shows a stale render).  The shared render
of a mailing (markers where member values go, no member's data) is also kept on disk between runs
(``inline_shared``, see ``render_cache``); anything rendered for one member stays in memory.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
import types
from pathlib import Path
from typing import Any

from newsletter.errors import Problem, TemplateError

#: premailer's options (part of the key of every inlined HTML kept on disk).
OPTIONS: dict[str, Any] = {
    "keep_style_tags": True,
    "strip_important": False,
    "remove_classes": False,
    "disable_validation": True,
    "allow_network": False,
    "cssutils_logging_level": logging.CRITICAL,
}


@functools.lru_cache(maxsize=16)
def inline_shared(html: str, cache_dir: Path | None) -> str:
    """``inline_css`` for the shared render of a mailing (no member's data in it), kept in the
    render cache of ``cache_dir`` between runs (None: in memory only)."""
    if cache_dir is None:
        return inline_css(html)
    from newsletter.compose.render_cache import InlineCache, code_digest

    options = f"{sorted(OPTIONS.items())!r}|{code_digest(__file__)}"
    return InlineCache(cache_dir / "inline", options).inlined(html, inline_css)


@functools.lru_cache(maxsize=16)
def inline_css(html: str) -> str:
    """Move the stylesheet into style attributes (mail clients drop <style>); keep @media rules."""
    try:
        return str(_premailer_class()(html, **OPTIONS).transform())
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

    class CachedPremailer(premailer.Premailer):  # type: ignore[misc,name-defined]
        """Premailer that reads each stylesheet once: ``_parse_style_rules`` (a private method of
        premailer 3.10, hence the pin in pyproject.toml) gives only strings and cssutils rules it
        never changes, so its answer for the same text, position and options can be shared."""

        def _parse_style_rules(self, css_body: str, ruleset_index: int) -> tuple[list[Any], list[Any]]:
            key = (
                css_body,
                ruleset_index,
                self.strip_important,
                self.exclude_pseudoclasses,
                self.include_star_selectors,
                self.disable_validation,
            )
            found = _STYLE_RULES.get(key)
            if found is None:
                rules, leftover = super()._parse_style_rules(css_body, ruleset_index)
                found = (tuple(rules), tuple(leftover))
                if len(_STYLE_RULES) >= _STYLE_RULES_KEPT:
                    _STYLE_RULES.clear()
                _STYLE_RULES[key] = found
            return list(found[0]), list(found[1])

    return CachedPremailer


class _OnFirstUse(types.ModuleType):
    """Stands for a module until an attribute of it is first asked for, then imports it for real."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def _import_premailer() -> Any:
    """premailer, without loading `requests` (~70 ms of a `check`): premailer imports it only to
    fetch external stylesheets, which allow_network=False never does.  Its module-level name is a
    stand-in that imports the real library on first use, so nothing behaves differently."""
    if "premailer.premailer" in sys.modules or "requests" in sys.modules:
        import premailer

        return premailer
    stand_in = _OnFirstUse("requests")
    sys.modules["requests"] = stand_in
    try:
        import premailer
    finally:
        if sys.modules.get("requests") is stand_in:
            del sys.modules["requests"]
    return premailer


#: premailer's reading of each stylesheet, by its text, position and options (a few are enough).
_STYLE_RULES: dict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[Any, ...]]] = {}
_STYLE_RULES_KEPT = 16
