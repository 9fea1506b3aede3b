#!/usr/bin/env python3
"""What a mailing writes to disk: SQLite transactions, statements and bytes per message.

`newsletter send` to N members (10,000 by default, a group made as bench.py makes it) into Postfix's
smtp-sink on 127.0.0.1, at 4 and 16 connections, each run on a new state file.  The send runs
under a small wrapper that counts every SQL statement and transaction of its connections (sqlite3's
trace callback; nothing in the package is changed for it) and under GNU time, whose %O (file system
outputs, in 512-byte blocks: the kernel's write_bytes) is the bytes the process caused to be
written; /proc/self/io at exit gives the same figure and the part cancelled (pages truncated before
they reached the disk).  Targets (issue 13): at most 0.05 transactions and 4 KB per message.

Run: `.venv/bin/python bench/ledger_io.py [--members 10000] [--connections 4,16] [--rounds 5]`;
`--variant before=/tmp/base` also runs another copy of the package (DIR/newsletter/) in each round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench.py beside this file (bench/ is not a package)
    sys.path.insert(0, str(HERE))

from bench import (  # noqa: E402
    GNU_TIME,
    INSTALL_POSTFIX,
    SEND_AT,
    SMTP_SINK,
    Sink,
    check_variant,
    env_for,
    load,
    make_group,
    parse_connections,
    parse_variant,
    variant_env,
)

MAX_TRANSACTIONS = 0.05  # per message
MAX_BYTES = 4096  # written per message

#: Runs `newsletter` (argv[2:]) in this process, counting each connection's statements and write
#: transactions (an explicit BEGIN, or a write outside one: SQLite commits it by itself), and writes
#: the counts and /proc/self/io to argv[1] at exit.
CHILD = r"""
import atexit, collections, json, runpy, sqlite3, sys
out = sys.argv[1]
counts = collections.Counter()
WRITES = {"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER"}
real = sqlite3.connect
def connect(*args, **kwargs):
    conn = real(*args, **kwargs)
    inside = [False]
    def trace(sql):
        counts["statements"] += 1
        word = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if word == "BEGIN":
            counts["transactions"] += 1
            inside[0] = True
        elif word in ("COMMIT", "END", "ROLLBACK"):
            inside[0] = False
        elif word in WRITES and not inside[0]:
            counts["transactions"] += 1
    conn.set_trace_callback(trace)
    return conn
sqlite3.connect = connect
def dump():
    with open("/proc/self/io") as fh:
        io = {k: int(v) for k, v in (line.split(": ") for line in fh.read().splitlines())}
    with open(out, "w") as fh:
        json.dump({"counts": counts, "io": io}, fh)
atexit.register(dump)
sys.argv = ["newsletter", *sys.argv[2:]]
runpy.run_module("newsletter", run_name="__main__", alter_sys=True)
"""


@dataclass
class Measure:
    label: str
    connections: int
    messages: int
    transactions: int
    statements: int
    written: int  # bytes: GNU time's %O x 512 (the whole process), else /proc/self/io write_bytes
    cancelled: int  # of /proc/self/io write_bytes, truncated before writeback
    wall: float
    load: float

    @property
    def tx_per_msg(self) -> float:
        return self.transactions / self.messages

    @property
    def st_per_msg(self) -> float:
        return self.statements / self.messages

    @property
    def bytes_per_msg(self) -> float:
        return self.written / self.messages

    @property
    def net_per_msg(self) -> float:
        return (self.written - self.cancelled) / self.messages


def send_once(
    label: str, group: Path, work: Path, port: int, connections: int, members: int, source: Path | None
) -> Measure:
    state = work / f"state-{time.monotonic_ns()}.sqlite3"
    counts = work / f"counts-{time.monotonic_ns()}.json"
    usage = work / f"usage-{time.monotonic_ns()}.txt"
    env, cwd = variant_env(env_for(group, port, connections, state), source)
    cmd = [sys.executable, "-c", CHILD, str(counts), "--dir", str(group), "send", "--at", SEND_AT]
    if GNU_TIME:
        cmd = [GNU_TIME, "-f", "%O", "-o", str(usage), *cmd]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0 or f"sent {members} of {members}" not in proc.stdout:
        raise SystemExit(
            f"{label}: newsletter send failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
        )
    data = json.loads(counts.read_text())
    io = data["io"]
    written = int(usage.read_text().split()[-1]) * 512 if GNU_TIME else io["write_bytes"]
    for path in work.glob(f"{state.name}*"):
        path.unlink()
    for path in (counts, usage):
        path.unlink(missing_ok=True)
    counted = data["counts"]
    return Measure(
        label, connections, members, counted.get("transactions", 0), counted.get("statements", 0),
        written, io["cancelled_write_bytes"], wall, os.getloadavg()[0],
    )  # fmt: skip


def spread(values: Sequence[float], fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} [{format(min(values), fmt)}–{format(max(values), fmt)}]"


def report(runs: list[Measure]) -> list[str]:
    lines = []
    keys = sorted({(r.label, r.connections) for r in runs}, key=lambda k: (k[1], k[0] != "this code", k[0]))
    for label, conns in keys:
        mine = [r for r in runs if (r.label, r.connections) == (label, conns)]
        tx = statistics.median(r.tx_per_msg for r in mine)
        kb = statistics.median(r.bytes_per_msg for r in mine)
        lines += [
            f"{label} · {conns} connections · {len(mine)} rounds"
            f" · load {spread([r.load for r in mine], '.2f')}",
            f"  transactions / message  {spread([r.tx_per_msg for r in mine], '.4f')}"
            f"   [{'ok' if tx <= MAX_TRANSACTIONS else 'FAIL'}] target ≤ {MAX_TRANSACTIONS}",
            f"  statements / message    {spread([r.st_per_msg for r in mine], '.2f')}",
            f"  bytes written / message {spread([r.bytes_per_msg / 1024 for r in mine], '.2f')} KB"
            f"   [{'ok' if kb <= MAX_BYTES else 'FAIL'}] target ≤ {MAX_BYTES // 1024} KB",
            "    less pages cut off before writeback: "
            f"{spread([r.net_per_msg / 1024 for r in mine], '.2f')} KB",
            f"  wall {spread([r.wall for r in mine], '.1f')} s"
            f" ({spread([r.messages / r.wall for r in mine], ',.0f')} msgs/s, start-up included)",
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10_000, help="list size (default 10,000)")
    parser.add_argument("--connections", type=parse_connections, default=[4, 16], help="default 4,16")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--sections", type=int, default=4, help="extra article sections (message size)")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if not os.access(SMTP_SINK, os.X_OK):
        raise SystemExit(INSTALL_POSTFIX)
    if not Path("/proc/self/io").exists():
        raise SystemExit("needs Linux's /proc/self/io")
    for _, source in args.variant:
        check_variant(source)
    work = Path(tempfile.mkdtemp(prefix="ledger-io-"))
    sink = Sink()
    try:
        group = make_group(work / "group", args.members, args.sections)
        contenders: list[tuple[str, Path | None]] = [("this code", None), *args.variant]
        print(f"ledger I/O: {args.members:,} members, state on {work} ({load()})", flush=True)
        runs: list[Measure] = []
        for number in range(args.rounds):
            order = [(label, src, c) for c in args.connections for label, src in contenders]
            for label, source, conns in order if number % 2 == 0 else order[::-1]:
                run = send_once(label, group, work, sink.port, conns, args.members, source)
                runs.append(run)
                print(
                    f"  round {number + 1}: {label:>10} {conns:>2} conns  {run.tx_per_msg:.4f} tx/msg  "
                    f"{run.st_per_msg:.2f} stmt/msg  {run.bytes_per_msg / 1024:.2f} KB/msg  "
                    f"({run.wall:.1f} s, load {run.load:.2f})",
                    flush=True,
                )
        print("\n".join(["", *report(runs), f"({load()})"]))
    finally:
        sink.close()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
