#!/usr/bin/env python3
"""Start-up cost of the commands an organiser or cron runs most: a no-op `tick` and `check`.

On a copy of the shipped sample group (as the `sample` test fixture makes it), over interleaved
rounds, the wall time (min–median–max) and CPU time of:

  python -c pass                  the interpreter alone
  python -c "import newsletter"   the yardstick of the tick target
  newsletter tick --at IDLE_AT    nothing due, as cron meets it: answered from the idle note an
                                  earlier full tick left (.newsletter/tick-idle.json)
  newsletter tick (full)          the same with the note deleted before each run: what runs at
                                  least once an hour, and after any change to the group's files
  newsletter check (warm)         every upcoming mail rendered and inlined, the render cache
                                  (.newsletter/cache/) as the previous run left it, files unchanged
  newsletter check (edited)       the organiser's loop: one meeting edited in schedule.yaml (a new
                                  venue note each round, never seen before), then check
  newsletter check (cold)         the render cache deleted before each run (the first check after
                                  an upgrade, or after deleting the folder)

then the targets: `check` < 0.4 s, warm and after the edit (the cold figure is printed beside them,
with no target), and the no-op `tick` < 2.5 × `import newsletter` (all on the median wall time;
the full tick is printed beside it),
and which heavy libraries the no-op tick and the warm check still import.

Compiled bytecode is kept warm in a private folder (PYTHONPYCACHEPREFIX), as an installed program
has it, whatever PYTHONDONTWRITEBYTECODE says here.  Run: `.venv/bin/python bench/startup.py`
(`--rounds N`, `--source DIR` to time another copy of the package, DIR/newsletter/,
`--instructions` to add each command's count of executed instructions under valgrind: a figure
other work on a shared machine does not move, for comparing two versions; slow, about a minute
per command).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ("schedule.yaml", "subscribers.csv", "content", "templates")
IDLE_AT = "2026-11-20T10:00"  # before the sample's first reminder (2026-12-01 09:00): nothing is due
#: The meeting edited for "check (edited)": a line of the shipped schedule.yaml, given a new ending.
EDITED_LINE = "note: We have a private room reserved."
HEAVY = (
    "jinja2",
    "premailer",
    "lxml",
    "cssutils",
    "aiosmtplib",
    "icalendar",
    "email_validator",
    "apscheduler",
    "dkim",
    "markdown",
    "requests",
    "asyncio",
    "ruamel",
)
CHECK_TARGET = 0.4  # seconds
TICK_TARGET = 2.5  # × `python -c "import newsletter"`


@dataclass
class Command:
    label: str
    argv: list[str]
    expect: str = ""  # text its output must contain (a failed or busy run is no figure)
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    before: Callable[[], None] | None = None  # run before each timed run (not timed)
    after: Callable[[], None] | None = None  # and after it

    def spread(self) -> str:
        w = sorted(self.walls)
        return (
            f"{w[0] * 1000:6.0f} – {statistics.median(w) * 1000:6.0f} – {w[-1] * 1000:6.0f} ms"
            f"   CPU median {statistics.median(self.cpus) * 1000:5.0f} ms"
        )

    @property
    def median(self) -> float:
        return statistics.median(self.walls)


def copy_sample(target: Path) -> Path:
    target.mkdir(parents=True)
    for name in SAMPLE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name)
        else:
            shutil.copy(src, target / name)
    return target


def environment(work: Path, source: Path | None) -> dict[str, str]:
    """The caller's environment without the group settings a developer may have set (as the tests
    clear them), with warm bytecode kept out of the source tree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(source), env.get("PYTHONPATH", "")) if p)
    return env


def timed(cmd: Command, env: dict[str, str], cwd: Path) -> None:
    """One run, its wall time and the CPU time of the process (user + system)."""
    if cmd.before:
        cmd.before()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd.argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if cmd.after:
        cmd.after()
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or cmd.expect not in out:
        raise SystemExit(f"{cmd.label} failed (exit {code}):\n{out}\n{err[-2000:]}")
    cmd.walls.append(wall)
    cmd.cpus.append(usage.ru_utime + usage.ru_stime)


def heavy_imports(argv: Sequence[str], env: dict[str, str], cwd: Path) -> list[str]:
    traced = subprocess.run(
        [sys.executable, "-X", "importtime", *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True
    )
    return [m for m in HEAVY if re.search(rf"\|\s+{m}(\.\S+)?\s*$", traced.stderr, re.MULTILINE)]


def instructions(cmd: Command, env: dict[str, str], cwd: Path) -> int | None:
    """Instructions executed by one run (valgrind's callgrind; hash seed fixed), or None without it."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    if cmd.before:
        cmd.before()
    traced = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd.argv],
        cwd=cwd,
        env={**env, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
    )
    if cmd.after:
        cmd.after()
    found = re.search(r"Collected : (\d+)", traced.stderr)
    return int(found.group(1)) if found and traced.returncode == 0 else None


class Edits:
    """One meeting of the group's schedule.yaml edited before a run (a new note each time, so the
    render cache has never seen it), the file put back after it."""

    def __init__(self, group: Path) -> None:
        self.path = group / "schedule.yaml"
        self.original = self.path.read_text(encoding="utf-8")
        if EDITED_LINE not in self.original:
            raise SystemExit(f"schedule.yaml has no line {EDITED_LINE!r} to edit: update EDITED_LINE")
        self.count = 0

    def edit(self) -> None:
        self.count += 1
        edited = EDITED_LINE.replace("reserved.", f"reserved (edit {self.count}, {os.getpid()}).")
        self.path.write_text(self.original.replace(EDITED_LINE, edited, 1), encoding="utf-8")

    def restore(self) -> None:
        self.path.write_text(self.original, encoding="utf-8")


def check_commands(cli: list[str], group: Path) -> list[Command]:
    """`check` with the render cache warm, after an edit, and cold."""
    edits = Edits(group)
    cache = group / ".newsletter" / "cache"
    return [
        Command("newsletter check (warm render cache)", [*cli, "check"], expect="All good"),
        Command(
            "newsletter check (one meeting edited)",
            [*cli, "check"],
            expect="All good",
            before=edits.edit,
            after=edits.restore,
        ),
        Command(
            "newsletter check (cold: no render cache)",
            [*cli, "check"],
            expect="All good",
            before=lambda: shutil.rmtree(cache, ignore_errors=True),
        ),
    ]


def report(
    commands: list[Command],
    rounds: int,
    load: tuple[float, float],
    heavy: dict[str, list[str]],
    counts: dict[str, int | None],
) -> None:
    """The figures, each against its target."""
    print(
        f"\n{rounds} interleaved rounds; load average {load[0]:.2f} before, "
        f"{load[1]:.2f} after (this machine: {os.cpu_count()} CPUs)\n"
    )
    print(f"{'wall min – median – max':>36}")
    for cmd in commands:
        print(f"{cmd.label:<48}{cmd.spread()}")
    base, tick, (warm, edited, cold), full = commands[1], commands[2], commands[3:6], commands[6]
    ratio = tick.median / base.median
    cpu_ratio = statistics.median(tick.cpus) / statistics.median(base.cpus)
    if counts:
        yardstick = counts[base.label]
        print("\ninstructions executed (valgrind, one run each):")
        for label, count in counts.items():
            ratio_text = f"  {count / yardstick:5.1f} × import newsletter" if count and yardstick else ""
            print(f"{label:<48}{count / 1e6 if count else float('nan'):8.0f} M{ratio_text}")
    print()
    for label, found in heavy.items():
        print(f"{label} imports: {', '.join(found) or 'none of ' + ', '.join(HEAVY)}")
    print(
        f"no-op tick / import newsletter: {ratio:.1f}× wall (median), {cpu_ratio:.1f}× CPU; "
        f"per round: {', '.join(f'{t / b:.1f}' for t, b in zip(tick.walls, base.walls, strict=True))}"
    )
    verdicts = [
        (
            f"check < {CHECK_TARGET} s (warm render cache)",
            warm.median < CHECK_TARGET,
            f"{warm.median:.3f} s",
        ),
        (
            f"check < {CHECK_TARGET} s (one meeting edited)",
            edited.median < CHECK_TARGET,
            f"{edited.median:.3f} s",
        ),
        (
            f"no-op tick < {TICK_TARGET} × import newsletter",
            ratio < TICK_TARGET,
            f"{tick.median:.3f} s = {ratio:.1f} × {base.median:.3f} s",
        ),
    ]
    print()
    for name, ok, figure in verdicts:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {figure}")
    print(
        f"  (no target) check with a cold render cache: {cold.median:.3f} s "
        "(the first run after an upgrade, or after .newsletter/cache/ was deleted)"
    )
    print(
        f"  (no target) the full no-op tick, idle note deleted: {full.median:.3f} s = "
        f"{full.median / base.median:.1f} × import newsletter (at least once an hour, and after any change)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (at least 5)")
    parser.add_argument("--source", type=Path, help="time DIR/newsletter/ instead of this checkout's")
    parser.add_argument("--instructions", action="store_true", help="also count instructions (valgrind)")
    args = parser.parse_args()
    rounds = max(args.rounds, 5)
    source = args.source.resolve() if args.source else None
    if source is not None and not (source / "newsletter" / "__init__.py").is_file():
        parser.error(f"--source {source}: no newsletter/ package there")
    with tempfile.TemporaryDirectory(prefix="newsletter-startup-") as tmp:
        work = Path(tmp)
        group = copy_sample(work / "group")
        env = environment(work, source)
        cli = [sys.executable, "-m", "newsletter"]
        commands = [
            Command("python -c pass", [sys.executable, "-c", "pass"]),
            Command('python -c "import newsletter"', [sys.executable, "-c", "import newsletter"]),
            Command(
                f"newsletter tick --at {IDLE_AT} (no-op)",
                [*cli, "tick", "--at", IDLE_AT],
                expect="Nothing due now",
            ),
            *check_commands(cli, group),
            Command(
                "newsletter tick (full: no idle note)",
                [*cli, "tick", "--at", IDLE_AT],
                expect="Nothing due now",
                before=lambda: (group / ".newsletter" / "tick-idle.json").unlink(missing_ok=True),
            ),
        ]
        where = subprocess.run(
            [sys.executable, "-c", "import newsletter; print(newsletter.__file__)"],
            env=env,
            cwd=group,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        print(f"package: {Path(where).parent}\ngroup: a copy of the shipped sample in {group}")
        for cmd in [*commands, commands[2]]:  # warm-up: bytecode compiled, the ledger created by the
            timed(cmd, env, group)  # first tick, the idle note left by the last
            cmd.walls.clear()
            cmd.cpus.clear()
        if not (group / ".newsletter" / "state.sqlite3").is_file():
            raise SystemExit("the warm-up tick left no ledger in .newsletter/state.sqlite3")
        load_before = os.getloadavg()
        for i in range(rounds):
            for cmd in commands if i % 2 == 0 else commands[::-1]:
                timed(cmd, env, group)
        load_after = os.getloadavg()
        heavy = {
            "no-op tick": heavy_imports(commands[2].argv, env, group),
            "check (warm render cache)": heavy_imports(commands[3].argv, env, group),
        }
        counts = {cmd.label: instructions(cmd, env, group) for cmd in commands} if args.instructions else {}
    report(commands, rounds, (load_before[0], load_after[0]), heavy, counts)


if __name__ == "__main__":
    main()
