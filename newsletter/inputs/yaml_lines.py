"""YAML read as YAML 1.2 (``18:30`` stays the text ``"18:30"``), keeping line numbers for messages."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from newsletter.errors import DataError, Problem


def load_yaml(text: str, path: str, *, line_offset: int = 0) -> Any:
    """Parse YAML text; a syntax error becomes a DataError naming ``path:line``."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 + line_offset if mark is not None else None
        problem = (err.problem or err.context or "not valid YAML").strip()
        hint = "check the indentation and quoting on this line (put text with ':' or '#' in quotes)"
        if "duplicate key" in str(err):
            problem, hint = "a key appears twice", "keep one of them"
        raise DataError([Problem(path, line, f"YAML syntax: {problem}", hint)]) from err
    except YAMLError as err:
        raise DataError([Problem(path, None, f"not valid YAML: {err}", "fix the syntax")]) from err
    except ValueError as err:
        # ruamel reads 2027-02-30 as a date and fails without a position: find the line ourselves.
        line = _impossible_date_line(text)
        raise DataError(
            [
                Problem(
                    path,
                    line + line_offset if line else None,
                    "the date does not exist",
                    "check the day and month: write dates as YYYY-MM-DD, e.g. 2027-02-09",
                )
            ]
        ) from err


_DATE = re.compile(r"(?<![\w-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w-])")


def _impossible_date_line(text: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _DATE.finditer(line.split("#", 1)[0]):
            try:
                dt.date(*(int(g) for g in match.groups()))
            except ValueError:
                return number
    return None


def key_line(node: Any, key: str | int, *, line_offset: int = 0) -> int | None:
    """1-based line of ``key`` (or list item ``key``) inside a mapping or sequence from load_yaml."""
    try:
        if isinstance(node, CommentedMap):
            return int(node.lc.key(key)[0]) + 1 + line_offset
        if isinstance(node, CommentedSeq):
            return int(node.lc.item(key)[0]) + 1 + line_offset
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    return node_line(node, line_offset=line_offset)


def node_line(node: Any, *, line_offset: int = 0) -> int | None:
    """1-based line where a mapping or sequence starts, if known."""
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return None
    return int(lc.line) + 1 + line_offset
