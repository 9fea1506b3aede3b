#!/usr/bin/env python3
"""Does a personalised template keep up with the stock one?

The same 10,000-member mailing (the reminder with its HTML at about 20 KB after inlining, as in
bench/bench.py) is sent by `newsletter send` into Postfix's smtp-sink on 127.0.0.1 with three sets
of templates:

  stock    the shipped templates
  if-name  the same, plus in both the HTML and the text template
             {% if member.name %}Welcome back, {{ member.name }}!{% else %}Welcome, friend!{% endif %}
  filter   the same, plus a filter and a test on member values:
             {{ member.name|default("friend", true)|title }} … {% if member.name|length > 14 %} … {% endif %}

Rounds are interleaved (stock, if-name, filter; the next round in reverse order).  Printed: msgs/s
and CPU µs per message (the process's user + system time over the messages, start-up included) for
each, median and spread (min–max), with the load average; and each personalised template's rate as
a ratio to the stock one of the same round, against the target ≥ 0.5.

Run: `.venv/bin/python bench/personalise.py [--members 10000] [--rounds 5] [--connections 16]
[--package DIR]` (`--package`: run the `newsletter` package in DIR/newsletter instead, e.g. a copy
of the code before a change).  Needs smtp-sink (`apt-get install postfix`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench.py beside this file (run as a script)

from bench import (  # type: ignore[attr-defined,unused-ignore]
    ROOT,
    SEND_AT,
    SMTP_SINK,
    Run,
    Sink,
    env_for,
    fit_sections,
    load,
    make_group,
    run_process,
    variant_env,
)

TARGET = 0.5
IF_NAME = {
    "html": '{% if member.name %}<p class="lead">Welcome back, {{ member.name }}!</p>'
    '{% else %}<p class="lead">Welcome, friend!</p>{% endif %}',
    "txt": "{% if member.name %}Welcome back, {{ member.name }}!{% else %}Welcome, friend!{% endif %}\n",
}
FILTER = {
    "html": '<p class="lead">{{ member.name|default("friend", true)|title }}, we kept you a seat.'
    "{% if member.name|length > 14 %} (What a long name!){% endif %}</p>",
    "txt": '{{ member.name|default("friend", true)|title }}, we kept you a seat.'
    "{% if member.name|length > 14 %} (What a long name!){% endif %}\n",
}
ANCHORS = {"html": '<p class="greeting">{{ greeting }}</p>\n', "txt": "{{ greeting }}\n"}


def personalise(group: Path, lines: dict[str, str]) -> None:
    for kind, text in lines.items():
        path = group / f"templates/reminder.{kind}"
        source = path.read_text(encoding="utf-8")
        assert ANCHORS[kind] in source, f"templates/reminder.{kind} changed: no greeting line"
        path.write_text(source.replace(ANCHORS[kind], ANCHORS[kind] + text + "\n", 1), encoding="utf-8")


def send(group: Path, port: int, connections: int, members: int, label: str, package: Path | None) -> Run:
    state = group / f".bench-state-{time.monotonic_ns()}.sqlite3"
    cmd = [sys.executable, "-m", "newsletter", "--dir", str(group), "send", "--at", SEND_AT]
    env, cwd = variant_env(env_for(group, port, connections, state), package)
    run = run_process(label, cmd, messages=members, env=env, cwd=cwd)
    if run.rc != 0 or f"sent {members} of {members}" not in run.out:
        raise SystemExit(f"newsletter send ({label}) failed ({run.rc}):\n{run.out}\n{run.err[-3000:]}")
    state.unlink(missing_ok=True)
    return run


def spread(values: Sequence[float], fmt: str = ",.0f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}–{max(values):{fmt}})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--html-size", type=int, default=20_000)
    parser.add_argument("--package", type=Path, default=None, help="DIR holding another newsletter/ to run")
    args = parser.parse_args(argv)
    if not os.access(SMTP_SINK, os.X_OK):
        print("smtp-sink not found: apt-get install postfix", file=sys.stderr)
        return 1
    package = args.package.resolve() if args.package else None
    work = Path(tempfile.mkdtemp(prefix="newsletter-personalise-"))
    try:
        sections = fit_sections(work / "fit", args.html_size)
        groups = {"stock": make_group(work / "stock", args.members, sections)}
        for label, lines in (("if-name", IF_NAME), ("filter", FILTER)):
            groups[label] = make_group(work / label, args.members, sections)
            personalise(groups[label], lines)
        print(
            f"personalised templates — {args.members:,} members, {args.connections} connections, "
            f"{args.rounds} interleaved rounds; code: {package or ROOT}\nbefore: {load()}\n",
            flush=True,
        )
        runs: dict[str, list[Run]] = {label: [] for label in groups}
        sink = Sink()
        try:
            for number in range(args.rounds):
                order = list(groups) if number % 2 == 0 else list(groups)[::-1]
                for label in order:
                    run = send(groups[label], sink.port, args.connections, args.members, label, package)
                    runs[label].append(run)
                    print(
                        f"  round {number + 1}/{args.rounds}: {label:8} {run.rate:7,.0f} msgs/s "
                        f"{run.cpu_us:7,.0f} CPU µs/msg   [{load()}]",
                        flush=True,
                    )
        finally:
            sink.close()
        print(f"\nmedian (min–max) of {args.rounds} rounds:")
        print(f"  {'':8} {'msgs/s':>22} {'CPU µs/msg':>22} {'rate / stock (same round)':>28}")
        stock = runs["stock"]
        verdicts = []
        for label, mine in runs.items():
            ratio = [r.rate / s.rate for r, s in zip(mine, stock, strict=True)]
            print(
                f"  {label:8} {spread([r.rate for r in mine]):>22} {spread([r.cpu_us for r in mine]):>22} "
                f"{spread(ratio, '.2f') if label != 'stock' else '':>28}"
            )
            if label != "stock":
                ok = statistics.median(ratio) >= TARGET
                verdicts.append(
                    f"  [{'ok' if ok else 'FAIL'}] {label} ≥ {TARGET} × stock: "
                    f"{statistics.median(ratio):.2f} (median of per-round ratios)"
                )
        print("\n".join(["\nchecks:", *verdicts]))
        print(f"after: {load()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
