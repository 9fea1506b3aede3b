"""The `newsletter` command's entry point.

Cron's `newsletter tick` usually finds nothing due: when the idle note of the last full tick still
holds (``newsletter.state.idle``), its line is printed here, before the command-line library and the
rest of the program are loaded.  Everything else — and any tick the note cannot answer — goes to
``newsletter.cli.main``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None, prog_name: str = "newsletter") -> int:
    args = sys.argv[1:] if argv is None else argv
    line = _quick_tick(args)
    if line is not None:
        from newsletter.cli.stamp import stamped

        print(stamped(line, sys.stdout), flush=True)
        return 0
    from newsletter.cli.main import main as full

    return full(args, prog_name=prog_name)


def _quick_tick(args: list[str]) -> str | None:
    """The idle note's answer to the plain forms ``[--dir HOME] tick [--at DATETIME]``, or None."""
    home: str | None = None
    rest = list(args)
    if len(rest) >= 2 and rest[0] == "--dir":
        home, rest = rest[1], rest[2:]
    elif rest and rest[0].startswith("--dir="):
        home, rest = rest[0].removeprefix("--dir="), rest[1:]
    if rest[:1] != ["tick"]:
        return None
    at: str | None = None
    if len(rest) == 3 and rest[1] == "--at":
        at = rest[2]
    elif len(rest) == 2 and rest[1].startswith("--at="):
        at = rest[1].removeprefix("--at=")
    elif len(rest) != 1:
        return None
    from newsletter.state.idle import quick_answer

    return quick_answer(home or None, at)
