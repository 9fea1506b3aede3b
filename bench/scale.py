#!/usr/bin/env python3
"""Memory and start at 1,000,000 members: peak RSS of the list commands and time to the first message.

On a group made like bench/bench.py's (the shipped schedule, content and templates, N members with
varied names, some non-ASCII, some empty), over interleaved rounds, each command under GNU time:

  newsletter check                        every file checked, the whole list included
  newsletter subscribers list             everyone, with who unsubscribed
  newsletter subscribers export           to the terminal (stdout thrown away)
  newsletter subscribers export FILE      to a file, written atomically
  newsletter send --at SEND_AT            the whole mailing into Postfix's smtp-sink on 127.0.0.1

then the targets: peak RSS under 100 MB for each, and the first message accepted by smtp-sink within
3 s of the start of `send` (read from smtp-sink's own running counter, `-c`, so the send is timed in
the very run whose memory is measured).  Each figure is printed as min–median–max over the rounds,
with the load average of the machine at the time.

The member list is generated once and cached in a temporary folder (``--cache``); the rest of the
group is copied fresh from this checkout each run.  A 1,000,000-member send takes 10 to 20 minutes on
a 2-core machine, so the default is 2 rounds; ``--members 100000`` for a quicker look, ``--skip-send``
to time only the list commands.  Run: `.venv/bin/python bench/scale.py`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # bench.py's helpers: the same group, list and environment

from bench import SEND_AT, env_for, free_port, load, make_group, wait_for_port, write_members  # noqa: E402

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
GNU_TIME = "/usr/bin/time"
RSS_TARGET_MB = 100.0
FIRST_TARGET_S = 3.0
COMMANDS = ("check", "list", "export", "export-file", "send")


@dataclass
class Figure:
    """One command's runs: peak RSS (MB), wall time (s), the load average at its start."""

    label: str
    rss: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    first: list[float] = field(default_factory=list)  # send only: start → first message accepted
    loads: list[float] = field(default_factory=list)


class CountingSink:
    """smtp-sink with its running counter (-c) read as it goes: the moment of the first message."""

    def __init__(self) -> None:
        self.port = free_port()
        cmd = [SMTP_SINK, "-c"]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        cmd += ["-m", "1024", f"127.0.0.1:{self.port}", "1024"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.first_at: float | None = None
        self.messages = 0
        self._baseline = 1 << 62  # not armed yet
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_for_port(self.port, self.proc)

    def arm(self) -> None:
        """Count from now on: the first message is the first one after the count seen now."""
        self.first_at = None
        self._baseline = self.messages

    def _read(self) -> None:
        # The counter is rewritten in place ("sess=0 quit=0 mesg=12\r") each time "." is received or
        # a session ends; the pipe must be drained all along, or smtp-sink would block on it.
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 1 << 16):
            now = time.perf_counter()
            tail = chunk.rsplit(b"mesg=", 1)
            digits = tail[-1].split(b"\r", 1)[0].strip() if len(tail) == 2 else b""
            if digits.isdigit():
                self.messages = int(digits)
                if self.first_at is None and self.messages > self._baseline:
                    self.first_at = now

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def timed(
    cmd: Sequence[str], env: dict[str, str], *, stdout: int | None = None, cwd: Path = ROOT
) -> tuple[float, float, str]:
    """(peak RSS in MB, wall s, stdout) of one process, its RSS and times from GNU time."""
    with tempfile.NamedTemporaryFile() as usage, tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.run(
            [GNU_TIME, "-f", "%M %e", "-o", usage.name, *cmd],
            env=env,
            cwd=cwd,
            stdout=out if stdout is None else stdout,
            stderr=subprocess.PIPE,
            check=False,
        )
        wall = time.perf_counter() - start
        fields = Path(usage.name).read_text().split()[-2:]  # after "Command exited with …", if any
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{' '.join(cmd[3:])} failed ({proc.returncode}):\n{proc.stderr.decode()[-3000:]}")
    return float(fields[0]) / 1024, wall, text + proc.stderr.decode(errors="replace")[-3000:]


def group_for(members: int, cache: Path) -> Path:
    """The bench group with ``members`` members; the list is generated once and kept in ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    listed = cache / f"subscribers-{members}.csv"
    if not listed.exists():
        print(f"generating {members:,} members into {listed} …", flush=True)
        partial = listed.with_suffix(".part")
        write_members(partial, members)
        partial.replace(listed)
    group = make_group(cache / f"group-{members}", 0, 0)
    shutil.copyfile(listed, group / "subscribers.csv")
    return group


ARGS = {
    "check": ["check"],
    "list": ["subscribers", "list"],
    "export": ["subscribers", "export"],
    "export-file": ["subscribers", "export", "{group}/exported.csv"],
    "send": ["send", "--at", SEND_AT],
}
QUIET = {"list", "export"}  # their standard output (the whole list) is thrown away


def run_round(
    group: Path,
    members: int,
    commands: Sequence[str],
    figures: dict[str, Figure],
    sink: CountingSink,
    source: Path | None,
) -> None:
    """Each command once; ``source``: a folder holding another copy of the package (DIR/newsletter/)."""
    nl = [sys.executable, "-m", "newsletter", "--dir", str(group)]
    for name in commands:
        state = group / f".scale-state-{time.monotonic_ns()}.sqlite3"
        env = env_for(group, sink.port, 4, state)
        if source is not None:
            env["PYTHONPATH"] = str(source)  # with `-m` and the folder as cwd, its package comes first
        figure = figures[name]
        figure.loads.append(os.getloadavg()[0])
        args = [arg.format(group=group) for arg in ARGS[name]]
        sink.arm()
        start = time.perf_counter()
        stdout = subprocess.DEVNULL if name in QUIET else None
        rss, wall, out = timed([*nl, *args], env, stdout=stdout, cwd=source or ROOT)
        if name == "send":
            if f"sent {members} of {members}" not in out:
                raise SystemExit(f"send did not send to all {members:,} members:\n{out[-2000:]}")
            if sink.first_at is not None:
                figure.first.append(sink.first_at - start)
        if name == "check" and f"subscribers.csv: {members} members" not in out:
            raise SystemExit(f"check did not count {members:,} members:\n{out[-2000:]}")
        for left in [*group.glob(state.name + "*"), group / "exported.csv"]:
            left.unlink(missing_ok=True)
        # The state folder is the group's: a later `check` would take what this one kept (render
        # cache), and measure no reading of the list at all.
        shutil.rmtree(group / "cache", ignore_errors=True)
        figure.rss.append(rss)
        figure.wall.append(wall)
        extra = f", first message {figure.first[-1]:.2f} s" if name == "send" and figure.first else ""
        print(
            f"  {figure.label:<34} {rss:7.1f} MB {wall:8.1f} s{extra}  (load {figure.loads[-1]:.2f})",
            flush=True,
        )


def spread(values: Sequence[float], unit: str, digits: int = 1) -> str:
    if not values:
        return "n/a"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.{digits}f} {unit} (min–max {low:.{digits}f}–{high:.{digits}f}, n={len(values)})"


LABELS = {
    "check": "newsletter check",
    "list": "newsletter subscribers list",
    "export": "newsletter subscribers export",
    "export-file": "newsletter subscribers export FILE",
    "send": "newsletter send",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=1_000_000, help="list size (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(tempfile.gettempdir()) / "newsletter-scale",
        help="where the generated list is kept between runs (default: $TMPDIR/newsletter-scale)",
    )
    parser.add_argument("--skip-send", action="store_true", help="only the list commands")
    parser.add_argument(
        "--source",
        type=Path,
        help="time another copy of the package instead (DIR/newsletter/, e.g. the last release)",
    )
    parser.add_argument(
        "--only", default=",".join(COMMANDS), help=f"comma-separated subset of {','.join(COMMANDS)}"
    )
    args = parser.parse_args(argv)
    if not os.access(SMTP_SINK, os.X_OK) or not os.access(GNU_TIME, os.X_OK):
        print("needs Postfix's smtp-sink and GNU time: apt-get install postfix time", file=sys.stderr)
        return 1
    commands = [c for c in args.only.split(",") if c in COMMANDS and not (args.skip_send and c == "send")]
    group = group_for(args.members, args.cache)
    figures = {name: Figure(LABELS[name]) for name in commands}
    sink = CountingSink()
    where = f"the package in {args.source}" if args.source else "this checkout"
    print(f"{args.members:,} members, {args.rounds} rounds, {where}; {load()}", flush=True)
    try:
        for number in range(args.rounds):
            order = commands if number % 2 == 0 else commands[::-1]
            print(f"round {number + 1}:", flush=True)
            run_round(group, args.members, order, figures, sink, args.source)
    finally:
        sink.close()
    print(f"\n{args.members:,} members; {load()}")
    failed = False
    for name in commands:
        figure = figures[name]
        ok = max(figure.rss) < RSS_TARGET_MB
        failed |= not ok
        loads = f"load {min(figure.loads):.2f}–{max(figure.loads):.2f}"
        print(
            f"  [{'ok' if ok else 'FAIL'}] {figure.label:<34} peak RSS {spread(figure.rss, 'MB')} "
            f"< {RSS_TARGET_MB:.0f} MB; wall {spread(figure.wall, 's')}; {loads}"
        )
        if name == "send":
            first_ok = bool(figure.first) and max(figure.first) < FIRST_TARGET_S
            failed |= not first_ok
            print(
                f"  [{'ok' if first_ok else 'FAIL'}] {'first message after start of send':<34} "
                f"{spread(figure.first, 's', 2)} < {FIRST_TARGET_S:.0f} s"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
