"""YAML read as YAML 1.2 (``18:30`` stays the text ``"18:30"``), keeping line numbers for messages."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.parser import Parser
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import Scanner

from newsletter.errors import DataError, Problem

# What lies between two tokens: spaces (and tabs inside [ ] or { }), line breaks, and comments, which
# run to the end of their line. Possessive quantifiers: the gap is taken whole, never backtracked.
_NOT_END = "[^\n\r\0\x85\u2028\u2029]"
_GAP_BLOCK = re.compile(f"(?:[ \n\r\x85\u2028\u2029]++|#{_NOT_END}*+)*+")
_GAP_FLOW = re.compile(f"(?:[ \t\n\r\x85\u2028\u2029]++|#{_NOT_END}*+)*+")
_ANY_BREAK = re.compile("[\n\r\x85\u2028\u2029]")


class _Scanner(Scanner):
    """ruamel's scanner with the gaps between tokens skipped in one regular-expression match.

    Its own loop moves one character at a time through Python calls (and the round-trip scanner
    also builds every comment by string concatenation, which is quadratic): a 1 MB file of comments
    took 18 s. Comments are never needed here (nothing is written back), so they are dropped.
    """

    def scan_to_next_token(self) -> None:
        reader = self.reader
        if reader.stream is not None or reader.raw_buffer is not None:  # only text is read in one piece
            super().scan_to_next_token()
            return
        if reader.index == 0 and reader.peek() == "\ufeff":
            reader.forward()
        pattern = _GAP_FLOW if self.flow_level else _GAP_BLOCK
        gap = pattern.match(reader.buffer, reader.pointer).group()  # type: ignore[union-attr]
        if not gap:
            return
        # The reader's position, as its forward() would leave it: a line ends at LF or at a CR alone.
        lines = gap.count("\n") + gap.count("\r") - gap.count("\r\n")
        reader.pointer += len(gap)
        reader.index += len(gap)
        if lines:
            reader.line += lines
            reader.column = len(gap) - 1 - max(gap.rfind("\n"), gap.rfind("\r"))
        else:
            reader.column += len(gap)
        if not self.flow_level and _ANY_BREAK.search(gap):
            self.allow_simple_key = True


def load_yaml(text: str, path: str, *, line_offset: int = 0) -> Any:
    """Parse YAML text; a syntax error becomes a DataError naming ``path:line``."""
    yaml = YAML(typ="rt")
    # The round-trip constructor (mappings that know their lines) on the plain scanner and parser:
    # the round-trip ones only add the comments, at a quadratic cost.
    yaml.Scanner = _Scanner
    yaml.Parser = Parser
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
    except ReaderError as err:
        # A control character typed or pasted into the file: ruamel gives its position, not its line.
        position = err.position if isinstance(err.position, int) else 0
        line = text.count("\n", 0, position) + 1 + line_offset
        code = err.character if isinstance(err.character, int) else ord(text[position : position + 1] or "?")
        message = f"the line contains an invisible control character (U+{code:04X})"
        hint = "delete it: retype the line, or copy it from the sample"
        raise DataError([Problem(path, line, message, hint)]) from err
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
