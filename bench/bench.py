#!/usr/bin/env python3
"""How fast does a real mailing go out, against the transport's ceiling, the machine's and a peer's?

One run, same list, same ~20 KB message, same connection count, all into Postfix's smtp-sink on
127.0.0.1:

  (a) newsletter   `newsletter send` as a user runs it: render once, inline, MIME, ledger, SMTP
  (b) aiosmtplib   aiosmtplib alone sending the same prebuilt messages (the transport's ceiling)
  (c) smtp-source  Postfix's C load generator, `smtp-source -d` (the physical limit here)
  (d) mailmerge    awdeorio's mailmerge CLI on the same list and HTML (the peer a user would pick)

plus the time of a no-op `newsletter tick`, a --members 100000 mode (peak RSS at scale) and a
--slow-relay mode (replies delayed as by a relay tens of milliseconds away: connections matter).

Needs: `apt-get install postfix` (Debian; smtp-sink and smtp-source, no need to run the MTA:
`DEBIAN_FRONTEND=noninteractive apt-get install -y postfix`), `pip install mailmerge`, and
optionally `pip install py-spy` for --profile.  Run: `.venv/bin/python bench/bench.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SEND_AT = "2026-12-01T09:05"  # the sample schedule: the dinner's week-before reminder is due (a relay
# gets only what is due now)
IDLE_AT = "2026-11-20T10:00"  # nothing due yet: what a cron `tick` does most of the time
SENDER = "news@example.org"
SECRET = "bench-secret-0123456789abcdef"
HEAVY = ("jinja2", "premailer", "lxml", "cssutils", "aiosmtplib", "icalendar", "email_validator")
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
INSTALL_POSTFIX = (
    "smtp-sink/smtp-source not found: install Postfix's test tools with\n"
    "  sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y postfix\n"
    "(Debian/Ubuntu; the MTA itself need not run.  Fedora: dnf install postfix)"
)

FIRST = "Linda Rosa Carol Zoë Mary Patricia Jennifer Barbara Susan Siobhán Ana María Li Mei Aisha Priya"
LAST = "Harper Martin Delgado Jenkins O'Brien Smith Nguyen García Müller Ólafsdóttir Chen Johnson Brown"


# --- measuring a process ------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    messages: int
    wall: float
    cpu: float  # user + system seconds of the process (its children included if it waited for them)
    rss_mb: float
    rc: int
    out: str = ""
    err: str = ""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.wall if self.wall > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        return 1e6 * self.cpu / self.messages if self.messages else 0.0


def run_process(
    label: str,
    cmd: Sequence[str],
    *,
    messages: int,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    keep_output: bool = True,
) -> Run:
    """Run to the end: wall time, and CPU and peak RSS of that one process.

    Through GNU time when installed: a child forked straight from this (large) process would report
    this process's RSS as its own peak, since Linux carries the high-water mark across fork and exec.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile() as usage,
    ):
        timed = [GNU_TIME, "-f", "%U %S %M", "-o", usage.name, *cmd] if GNU_TIME else list(cmd)
        start = time.perf_counter()
        proc = subprocess.Popen(
            timed, stdout=out if keep_output else subprocess.DEVNULL, stderr=err, env=env, cwd=cwd
        )
        _, status, rusage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        cpu, rss_kb = rusage.ru_utime + rusage.ru_stime, float(rusage.ru_maxrss)
        if GNU_TIME:
            fields = Path(usage.name).read_text().split()[-3:]  # after "Command exited with …", if any
            cpu, rss_kb = float(fields[0]) + float(fields[1]), float(fields[2])
        out.seek(0)
        err.seek(0)
        return Run(
            label,
            messages,
            wall,
            cpu,
            rss_kb / 1024,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited at start ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class Sink:
    """smtp-sink on 127.0.0.1: accepts every message and throws it away."""

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        cmd = [SMTP_SINK, *options]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        cmd += ["-m", "1024", f"127.0.0.1:{self.port}", "1024"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class DelayProxy:
    """A TCP relay in front of smtp-sink that holds each reply back: a relay `delay_ms` away."""

    def __init__(self, target: int, delay_ms: float) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "_proxy", str(self.port), str(target), str(delay_ms)],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --- the group: schedule, N members, a ~20 KB reminder ---------------------------------------------

EXTRA_SECTIONS = [
    (
        "From our last meeting",
        "Thank you to everyone who came in October. We talked about the weeks after treatment ends, "
        "when the appointments stop and the worry often does not. Several of you said that writing "
        "questions down before each visit helped; others found it easier to bring a friend to take "
        "notes. We also shared the names of the counsellors and physical therapists who have been "
        "kind and patient with us, and the list is at the welcome table at every meeting.",
    ),
    (
        "Asking for a second opinion",
        "A second opinion is a normal part of good care, and a good doctor will not be offended. "
        "Ask your care team to send your records, scans and pathology slides ahead of time, check "
        "what your insurance covers before the visit, and write down what you want to learn: is the "
        "diagnosis the same, is there another treatment, and what happens if you wait. Bring someone "
        "with you if you can, and ask for a copy of every report for your own files.",
    ),
    (
        "Rides, meals and a listening ear",
        "If you need a ride to the meeting or to an appointment, call or write to Margaret or Vonnie "
        "by the Friday before and we will find a driver. Our meal train is open again for members in "
        "treatment; tell us about allergies and we will pass them on. And if you would simply like "
        "to talk to someone who has been where you are, we will put you in touch, quietly.",
    ),
    (
        "Caring for the carers",
        "Partners, daughters, sons and friends carry a great deal too. They are always welcome at "
        "our meetings, and the December dinner is a good first visit: no speeches, just good food, "
        "good company and the plans for the year ahead. Bring them along, or forward this reminder.",
    ),
]


def extra_partials(sections: int) -> tuple[str, str]:
    """HTML and text partials holding ``sections`` short articles: the bulk of a real newsletter."""
    html, text = [], []
    for i in range(sections):
        title, body = EXTRA_SECTIONS[i % len(EXTRA_SECTIONS)]
        html.append(f'<h2 class="section-heading">{title}</h2>\n<p class="article">{body}</p>')
        text.append(f"{title.upper()}\n\n{textwrap.fill(body, 72)}\n")
    return "\n".join(html) + "\n", "{% autoescape false %}\n" + "\n".join(text) + "{% endautoescape %}\n"


def make_group(folder: Path, members: int, sections: int) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in ("schedule.yaml", "content", "templates"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, folder / name)
    # A group that filled in its details: the sample's example venue loses its `placeholder: true`
    # mark, which would (rightly) stop a send to a real relay.
    schedule = folder / "schedule.yaml"
    kept = [
        ln
        for ln in schedule.read_text(encoding="utf-8").splitlines(True)
        if not ln.strip().startswith("placeholder: true")
    ]
    schedule.write_text("".join(kept), encoding="utf-8")
    html, text = extra_partials(sections)
    (folder / "templates/partials/bench_extra.html").write_text(html, encoding="utf-8")
    (folder / "templates/partials/bench_extra.txt").write_text(text, encoding="utf-8")
    for kind in ("html", "txt"):
        path = folder / f"templates/reminder.{kind}"
        source = path.read_text(encoding="utf-8")
        anchor = f'{{% include "partials/article.{kind}" %}}'
        assert anchor in source, f"templates/reminder.{kind}: {anchor} not found"
        path.write_text(source.replace(anchor, f'{{% include "partials/bench_extra.{kind}" %}}\n{anchor}'))
    write_members(folder / "subscribers.csv", members)
    return folder


def member_rows(count: int) -> Iterator[tuple[str, str, str]]:
    firsts, lasts = FIRST.split(), LAST.split()
    for i in range(count):
        first, last = firsts[i % len(firsts)], lasts[(i // len(firsts)) % len(lasts)]
        name = "" if i % 17 == 0 else f"{first} {last}"  # some rows have no name
        local = re.sub(r"[^a-z]", "", f"{first}.{last}".lower().encode("ascii", "ignore").decode()) or "m"
        yield f"{local}.{i}@example.org", name, f"20{10 + i % 15}-0{1 + i % 9}-1{i % 10}"


def write_members(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name", "joined"])
        writer.writerows(member_rows(count))


def env_for(group: Path, port: int, connections: int, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_"))}
    env.update(
        SMTP_URL=f"smtp://127.0.0.1:{port}",
        SMTP_CONNECTIONS=str(connections),
        NEWSLETTER_STATE=str(state),
        NEWSLETTER_SECRET=SECRET,
        NEWSLETTER_HOME=str(group),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def prepared(group: Path) -> Any:
    """The mailing as `send` prepares it (for the prebuilt messages and the peer's template)."""
    import datetime as dt

    from newsletter.project import load_project
    from newsletter.send.pipeline import prepare
    from newsletter.settings import resolve
    from newsletter.timing import next_due

    project = load_project(resolve(group, environ={"NEWSLETTER_SECRET": SECRET}), check_subscribers=False)
    now = dt.datetime.fromisoformat(SEND_AT).replace(tzinfo=project.schedule.group.tz)
    due = next_due(project.schedule, now)
    assert due is not None, "the sample schedule has no reminder after " + SEND_AT
    return project, prepare(project, due, now=now, columns=project.columns()), now


def html_size(group: Path) -> tuple[int, int]:
    """(HTML after inlining, whole message) in bytes for the first member."""
    project, prep, now = prepared(group)
    member = next(iter(project.members()))
    html, _ = prep.renderer.render_member(prep.context, prep.factory.member_values(member))
    return len(html.encode()), len(prep.build(member, now=now).data)


def fit_sections(folder: Path, target: int) -> int:
    """How many extra sections make the reminder's HTML about ``target`` bytes."""
    make_group(folder, 3, 0)
    base, _ = html_size(folder)
    make_group(folder, 3, 4)
    per = max((html_size(folder)[0] - base) / 4, 1.0)
    return max(0, round((target - base) / per))


def prebuilt(group: Path, count: int, path: Path) -> tuple[int, int]:
    """Write ``count`` members' real messages for (b) and smtp-source's -F; returns (count, mean size)."""
    project, prep, now = prepared(group)
    total = 0
    with path.open("wb") as fh:
        for i, member in enumerate(project.members()):
            if i == count:
                break
            env = prep.build(member, now=now)
            header = json.dumps([env.sender, env.recipient, len(env.data)]).encode()
            fh.write(header + b"\n" + env.data)
            total += len(env.data)
    return count, total // max(count, 1)


def read_prebuilt(path: Path) -> list[tuple[str, str, bytes]]:
    out = []
    with path.open("rb") as fh:
        while line := fh.readline():
            sender, recipient, size = json.loads(line)
            out.append((sender, recipient, fh.read(size)))
    return out


# --- (d) mailmerge: the same list and HTML through the peer -------------------------------------------


def mailmerge_files(group: Path, folder: Path, members: int) -> int:
    """Template, database and server config for mailmerge; returns its message size for one member."""
    from newsletter.compose.templates import Slot

    _, prep, _ = prepared(group)
    rendered = prep.factory.rendered
    jinja_for = {
        "greeting": "{% if name %}Dear {{ name }},{% else %}Hello,{% endif %}",
        "unsubscribe_url": "mailto:news@example.org?subject=unsubscribe%20{{ email }}",
        "member.email": "{{ email }}",
        "member.name": "{{ name }}",
    }

    def body(lines: Sequence[Any]) -> str:
        out = []
        for line in lines:
            segments = (line,) if isinstance(line, str) else line
            text = ""
            for seg in segments:
                if isinstance(seg, Slot):
                    text += jinja_for.get(rendered.slots[seg.index], "")
                else:  # ASCII with character references: mailmerge sends 7bit then, not base64
                    text += "{% raw %}" + seg.encode("ascii", "xmlcharrefreplace").decode() + "{% endraw %}"
            out.append(text)
        return "\n".join(out)

    boundary = "=_mailmerge_bench"
    subject = rendered.subject.encode("ascii", "replace").decode()
    template = (
        f"TO: {{{{ email }}}}\nSUBJECT: {subject}\nFROM: Women's Cancer Support Group <{SENDER}>\n"
        f'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: text/plain\n\n{body(rendered.text.lines)}\n"
        f"--{boundary}\nContent-Type: text/html\n\n{body(rendered.html.lines)}\n--{boundary}--\n"
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mailmerge_template.txt").write_text(template, encoding="utf-8")
    with (group / "subscribers.csv").open(encoding="utf-8") as src:
        lines = [next(src) for _ in range(members + 1)]
    (folder / "mailmerge_database.csv").write_text("".join(lines), encoding="utf-8")
    from mailmerge.template_message import TemplateMessage  # type: ignore[import-untyped]

    row = next(csv.DictReader(lines))
    _, _, message = TemplateMessage(folder / "mailmerge_template.txt").render(row)
    return len(str(message).encode())


def mailmerge_config(folder: Path, port: int) -> None:
    (folder / "mailmerge_server.conf").write_text(f"[smtp_server]\nhost = 127.0.0.1\nport = {port}\n")


# --- the runs -----------------------------------------------------------------------------------


def newsletter_send(
    group: Path,
    port: int,
    connections: int,
    members: int,
    label: str = "(a) newsletter",
    source: Path | None = None,
) -> Run:
    """``source``: a folder holding another `newsletter` package (a variant) to run instead of ROOT's."""
    state = group / f".bench-state-{time.monotonic_ns()}.sqlite3"
    cmd = [sys.executable, "-m", "newsletter", "--dir", str(group), "send", "--at", SEND_AT]
    env, cwd = variant_env(env_for(group, port, connections, state), source)
    run = run_process(label, cmd, messages=members, env=env, cwd=cwd)
    if run.rc != 0 or f"sent {members} of {members}" not in run.out:
        raise SystemExit(f"newsletter send failed ({run.rc}):\n{run.out}\n{run.err[-3000:]}")
    return run


def startup(work: Path, sections: int, port: int, connections: int, repeat: int) -> float:
    """Wall time of `newsletter send` to an empty list: imports, render once, inline, ledger, no SMTP."""
    group = make_group(work / "empty", 0, sections)
    runs = []
    for _ in range(max(repeat, 1)):
        state = group / f".bench-state-{time.monotonic_ns()}.sqlite3"
        cmd = [sys.executable, "-m", "newsletter", "--dir", str(group), "send", "--at", SEND_AT]
        run = run_process("start-up", cmd, messages=0, env=env_for(group, port, connections, state))
        if run.rc != 0:
            raise SystemExit(
                f"newsletter send to an empty list failed ({run.rc}):\n{run.out}\n{run.err[-3000:]}"
            )
        runs.append(run.wall)
    return min(runs)


def after_startup(run: Run, seconds: float) -> None:
    run.note = (run.note + "; " if run.note else "") + (
        f"start-up {seconds:.2f} s, then {run.messages / max(run.wall - seconds, 1e-9):,.0f} msgs/s"
    )


def aiosmtplib_alone(prebuilt_path: Path, port: int, connections: int, members: int) -> Run:
    cmd = [
        sys.executable,
        __file__,
        "_aiosmtplib",
        str(prebuilt_path),
        str(port),
        str(connections),
        str(members),
    ]
    run = run_process("(b) aiosmtplib alone", cmd, messages=members)
    if run.rc != 0:
        raise SystemExit(f"aiosmtplib run failed:\n{run.err[-3000:]}")
    inner = json.loads(run.out)
    run.extra = inner
    run.wall, run.cpu = inner["wall"], inner["cpu"]  # the sending itself, not loading the messages
    return run


def smtp_source(message: Path, port: int, connections: int, members: int) -> Run:
    cmd = [SMTP_SOURCE, "-d", "-s", str(connections), "-m", str(members), "-F", str(message)]
    cmd += ["-f", SENDER, "-t", "member@example.org", f"127.0.0.1:{port}"]
    run = run_process("(c) smtp-source -d", cmd, messages=members)
    if run.rc != 0:
        raise SystemExit(f"smtp-source failed ({run.rc}): {run.err[-2000:]}")
    return run


def mailmerge(folder: Path, port: int, members: int) -> Run:
    mailmerge_config(folder, port)
    exe = shutil.which("mailmerge", path=str(Path(sys.executable).parent)) or shutil.which("mailmerge")
    if exe is None:
        raise SystemExit("mailmerge not found: pip install mailmerge")
    cmd = [exe, "--no-dry-run", "--no-limit", "--output-format", "raw"]
    run = run_process("(d) mailmerge", cmd, messages=members, cwd=folder, keep_output=False)
    if run.rc != 0:
        raise SystemExit(f"mailmerge failed ({run.rc}): {run.err[-2000:]}")
    return run


def noop_tick(group: Path, port: int, repeat: int) -> tuple[str, list[str]]:
    """Median wall time of `newsletter tick` with nothing due, and which heavy modules it imported."""
    env = env_for(group, port, 4, group / ".bench-tick.sqlite3")
    cmd = [sys.executable, "-m", "newsletter", "--dir", str(group), "tick", "--at", IDLE_AT]
    times = []
    for _ in range(repeat):
        run = run_process("tick", cmd, messages=0, env=env)
        if run.rc == 2:
            return "n/a (tick not available)", []
        if run.rc != 0:
            return f"failed (exit {run.rc}): {run.err.strip()[-200:]}", []
        times.append(run.wall)
    traced = run_process("tick", [sys.executable, "-X", "importtime", *cmd[1:]], messages=0, env=env)
    imported = sorted({m for m in HEAVY if re.search(rf"\|\s+{m}(\.|\s*$)", traced.err, re.MULTILINE)})
    return f"{statistics.median(times):.3f} s (median of {repeat}, best {min(times):.3f} s)", imported


def best(repeat: int, *contenders: Callable[[], Run]) -> list[Run]:
    """Each contender's fastest of ``repeat`` rounds, run in turn (a, b, c, a, b, c …) so that other work
    on the machine, which only ever slows a run down, weighs on all of them alike."""
    rounds: list[list[Run]] = [[] for _ in contenders]
    for _ in range(max(repeat, 1)):
        for runs, once in zip(rounds, contenders, strict=True):
            runs.append(once())
    out = []
    for runs in rounds:
        fastest = max(runs, key=lambda r: r.rate)
        if len(runs) > 1:
            fastest.note = f"best of {len(runs)}: " + ", ".join(f"{r.rate:,.0f}" for r in runs)
        out.append(fastest)
    return out


def variant_env(env: dict[str, str], source: Path | None) -> tuple[dict[str, str], Path]:
    """Environment and working folder that make `python -m newsletter` import ``source``'s package
    (`-m` puts the working folder first on sys.path, ahead of the editable install)."""
    if source is None:
        return env, ROOT
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(source), env.get("PYTHONPATH", "")) if p)}
    return env, source


def check_variant(source: Path) -> None:
    env, cwd = variant_env(dict(os.environ), source)
    where = subprocess.run(
        [sys.executable, "-c", "import newsletter; print(newsletter.__file__)"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).resolve().is_relative_to(source.resolve()):
        raise SystemExit(f"variant {source}: `newsletter` is imported from {where}, not from the variant")


def parse_variant(text: str) -> tuple[str, Path]:
    label, sep, folder = text.partition("=")
    path = Path(folder).expanduser().resolve()
    if not sep or not label or not (path / "newsletter" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=DIR with DIR/newsletter/__init__.py")
    return label, path


def parse_connections(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or N,M,…") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N or N,M,…")
    return counts


def compare(
    args: argparse.Namespace, group: Path, work: Path, port: int, variants: Sequence[tuple[str, Path]]
) -> None:
    """Median of ``--rounds`` interleaved rounds of (a) for the code here and each variant, and (b).

    A round runs the baseline, each variant and then (b); every other round in the reverse order, so
    that neither side always runs first after a pause or last in a busy spell. Gains are the median
    of each round's own variant/baseline ratio (a paired comparison), not a ratio of medians."""
    rounds = max(args.rounds, 1)
    contenders: list[tuple[str, Path | None]] = [("baseline", None), *variants]
    for conns in args.connections:
        runs: dict[str, list[Run]] = {label: [] for label, _ in contenders}
        alone: list[Run] = []
        for number in range(rounds):
            order = contenders if number % 2 == 0 else contenders[::-1]
            for label, source in order:
                run = newsletter_send(group, port, conns, args.members, f"(a) {label}", source)
                runs[label].append(run)
                print(
                    f"  round {number + 1}/{rounds}, {conns} conns: (a) {label:22} {run.rate:7,.0f} msgs/s "
                    f"{run.cpu_us:7,.0f} CPU µs/msg",
                    flush=True,
                )
            b = aiosmtplib_alone(work / "prebuilt.bin", port, conns, args.members)
            alone.append(b)
            print(
                f"  round {number + 1}/{rounds}, {conns} conns: (b) {'aiosmtplib alone':22} "
                f"{b.rate:7,.0f} msgs/s {b.cpu_us:7,.0f} CPU µs/msg   [{load()}]",
                flush=True,
            )
        med = statistics.median
        print(
            f"\n{args.members:,} members, {conns} connections, median of {rounds} interleaved rounds"
            f" (per-round values in brackets):"
        )
        head = (
            f"  {'':26} {'msgs/s':>8} {'(a)/(b)':>8} {'CPU µs/msg':>11} "
            f"{'msgs/s vs baseline':>19} {'CPU vs baseline':>16}"
        )
        print(head)
        base = runs["baseline"]
        for label, _ in contenders:
            mine = runs[label]
            ratio_b = med(r.rate / b.rate for r, b in zip(mine, alone, strict=True))
            gain = med(r.rate / q.rate - 1 for r, q in zip(mine, base, strict=True))
            cpu = med(r.cpu_us / q.cpu_us - 1 for r, q in zip(mine, base, strict=True))
            vs = "" if label == "baseline" else f"{100 * gain:+18.1f}% {100 * cpu:+15.1f}%"
            print(
                f"  (a) {label:22} {med(r.rate for r in mine):8,.0f} {ratio_b:8.2f} "
                f"{med(r.cpu_us for r in mine):11,.0f} {vs}"
            )
            print(
                f"  {'':26} [{', '.join(f'{r.rate:,.0f}' for r in mine)}] msgs/s; "
                f"[{', '.join(f'{r.cpu_us:,.0f}' for r in mine)}] µs"
            )
        print(
            f"  (b) aiosmtplib alone       {med(b.rate for b in alone):8,.0f} {'':8} "
            f"{med(b.cpu_us for b in alone):11,.0f}"
        )
        print(
            f"  {'':26} [{', '.join(f'{b.rate:,.0f}' for b in alone)}] msgs/s; "
            f"[{', '.join(f'{b.cpu_us:,.0f}' for b in alone)}] µs"
        )
        ratio = med(r.rate / b.rate for r, b in zip(base, alone, strict=True))
        verdict = check(f"(a) ≥ 0.85 × (b) at {conns} connections", ratio >= 0.85, f"{ratio:.2f}")
        print(verdict + "\n", flush=True)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


# --- printing -----------------------------------------------------------------------------------


def table(runs: Sequence[Run], connections: str) -> str:
    head = f"{'messages':>9} {'conns':>5} {'wall s':>8} {'msgs/s':>9} {'CPU µs/msg':>11} {'peak RSS MB':>12}"
    rows = [f"{'':24} {head}"]
    for r in runs:
        rows.append(
            f"{r.label:24} {r.messages:>9,} {r.extra.get('conns', connections):>5} {r.wall:>8.2f} "
            f"{r.rate:>9,.0f} {r.cpu_us:>11,.0f} {r.rss_mb:>12.1f}" + (f"  {r.note}" if r.note else "")
        )
    return "\n".join(rows)


def check(label: str, ok: bool, detail: str) -> str:
    return f"  [{'ok' if ok else 'FAIL'}] {label}: {detail}"


# --- every target, each by its own benchmark ------------------------------------------------------

TARGET_RUNS = [  # (what, script and arguments): each prints its figures and "[ok]"/"[FAIL]" lines
    ("throughput: (a)/(b) at 4 and 16 connections", ["bench.py", "--rounds", "5", "--connections", "4,16"]),
    ("throughput: (a)/(c) smtp-source, (a)/(d) mailmerge", ["bench.py", "--connections", "16"]),
    ("ledger: transactions and bytes written per message", ["ledger_io.py"]),
    ("personalised template beside the stock one", ["personalise.py"]),
    ("start-up: check and a no-op tick", ["startup.py"]),
    ("1,000,000 members: peak RSS and the first message", ["scale.py"]),
]


def all_targets() -> int:
    """Run each benchmark in turn, showing its output, then every verdict line again in one list."""
    verdicts: list[str] = []
    for what, (script, *rest) in TARGET_RUNS:
        print(f"\n=== {what} ===", flush=True)
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / script), *rest],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if "[ok]" in line or "[FAIL]" in line:
                verdicts.append(f"{what}: {line.strip()}")
        if proc.wait() != 0:
            verdicts.append(f"{what}: [FAIL] the benchmark exited with {proc.returncode}")
    print("\n=== every target ===")
    print("\n".join(verdicts))
    return 1 if any("[FAIL]" in v for v in verdicts) else 0


# --- profile of (a) -----------------------------------------------------------------------------

STAGES = [  # (label, regex on any frame "Function (path:line)" of a sample): inclusive time
    ("start-up: imports", r"^_find_and_load \("),
    ("load_project: schedule, articles, whole-list validation", r"^load_project \("),
    ("prepare: render once (Jinja), premailer, ICS", r"^prepare \("),
    ("producer: read CSV, ledger lookups, build each message", r"^deliver\.<locals>\.produce \("),
    ("  iter_subscribers: CSV + email_validator", r"subscribers\.py"),
    ("  ledger claims and statuses per chunk", r"^DeliveryTables\.(claim|statuses) \("),
    ("  build: Prepared.build / MessageFactory.build", r"^(Prepared|MessageFactory)\.build \("),
    ("    per-member render fallback (render_member: Jinja + premailer)", r"^MailRenderer\.render_member \("),
    (
        "ledger writes: outcome journal and its folds",
        r"^(Recorder\.|DeliveryTables\.fold |Journal\.)",
    ),
    ("consumers: wait for their claim, send, progress", r"^deliver\.<locals>\.consume \("),
    ("  transport send (whole SMTP transaction)", r"^_SmtpConnection\.(send|_transaction) \("),
    ("    MAIL/RCPT/DATA commands (aiosmtplib execute_command)", r"^SMTP\.(mail|rcpt|execute_command) \("),
    ("      of which address parsing (email.utils.parseaddr)", r"^(parse_address|quote_address) \("),
    ("    message body: SMTP.data (CRLF/dot-stuffing, write, reply)", r"^SMTP\.data \("),
    ("      aiosmtplib's CRLF regex (normalize_message_line_endings)", r"^normalize_message_line_end"),
    ("  progress.advance", r"progress\.py"),
]
LEAVES = [  # (label, regex on the innermost frame): own time, where the CPU actually is
    ("waiting in select/epoll (server, network: idle)", r"selectors\.py"),
    ("asyncio internals (event loop, tasks, transports)", r"asyncio/"),
    ("aiosmtplib own code", r"aiosmtplib/"),
    ("SQLite calls in the ledger", r"newsletter/state/"),
    ("other newsletter code", r"newsletter/"),
    ("email package (parseaddr, headers, dates)", r"\(email/"),
    ("regular expressions", r"\(re/"),
    ("email_validator", r"email_validator/"),
    ("premailer / lxml / cssutils / jinja2", r"premailer/|lxml|cssutils/|jinja2/"),
    ("imports", r"importlib"),
]


def profile_send(group: Path, port: int, connections: int, members: int, out: Path) -> str:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    env = env_for(group, port, connections, group / f".bench-profile-{time.monotonic_ns()}.sqlite3")
    cmd = [sys.executable, "-m", "newsletter", "--dir", str(group), "send", "--at", SEND_AT]
    if spy is None:
        return "py-spy not installed (pip install py-spy): no profile"
    raw = out / "profile.txt"
    subprocess.run(
        [spy, "record", "--idle", "--rate", "250", "--format", "raw", "-o", str(raw), "--", *cmd],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stacks: list[tuple[list[str], int]] = []
    at_line: Counter[str] = Counter()  # innermost frame with its line number
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        where = [f.replace(str(ROOT) + "/", "") for f in stack.split(";")]
        if any("(threading.py" in f for f in where):
            continue  # not the main thread: the resolver's idle worker threads
        stacks.append(([re.sub(r":\d+\)$", ")", f) for f in where], int(count)))
        at_line[where[-1]] += int(count)
    total = sum(n for _, n in stacks)
    us = 1e6 / 250 / members  # one sample is 4 ms of wall time
    lines = [
        f"py-spy --idle at 250 Hz, {total:,} samples of the main thread ({total / 250:.1f} s) over one whole "
        f"`newsletter send` of {members:,} members, {connections} connections",
        f"\n  {'stage (inclusive; indented = part of the line above)':64} {'% wall':>7} {'µs/msg':>7}",
    ]
    for label, pattern in STAGES:
        rx = re.compile(pattern)
        hits = sum(n for frames, n in stacks if any(rx.search(f) for f in frames))
        lines.append(f"  {label:64} {100 * hits / total:7.1f} {hits * us:7.0f}")
    lines.append(f"\n  {'own time, by where the innermost frame is':64} {'% wall':>7} {'µs/msg':>7}")
    leaves: Counter[str] = Counter()
    for frames, n in stacks:
        label = next((lb for lb, rx in LEAVES if re.search(rx, frames[-1])), "other")
        leaves[label] += n
    for label, n in leaves.most_common():
        lines.append(f"  {label:64} {100 * n / total:7.1f} {n * us:7.0f}")
    lines.append(
        "\n  top lines by own time (C calls such as re.sub or sqlite3 count in the line calling them):"
    )
    for name, n in at_line.most_common(15):
        lines.append(f"    {100 * n / total:5.1f} % {n * us:5.0f} µs  {name[:100]}")
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10_000, help="list size (default 10,000)")
    parser.add_argument(
        "--connections",
        type=parse_connections,
        default=[16],
        help="SMTP connections for (a)-(c) (default 16); with --rounds a list, e.g. 4,16",
    )
    parser.add_argument(
        "--html-size",
        type=int,
        default=20_000,
        help="the reminder's HTML after inlining, in bytes (default 20,000)",
    )
    parser.add_argument(
        "--mailmerge-max",
        type=int,
        default=2_000,
        help="run mailmerge on the first N members at most (default 2,000: it takes ~4-12 ms a message)",
    )
    parser.add_argument("--skip-mailmerge", action="store_true", help="leave out (d)")
    parser.add_argument(
        "--slow-relay",
        action="store_true",
        help="also compare 1, 4 and 16 connections to a relay with slow replies",
    )
    parser.add_argument(
        "--rtt-ms", type=float, default=20.0, help="--slow-relay: reply delay in ms (default 20)"
    )
    parser.add_argument(
        "--sink-delay",
        type=int,
        default=0,
        metavar="SECONDS",
        help="--slow-relay: use smtp-sink's own -W .:SECONDS (whole seconds only) instead of the delay proxy",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run (a), (b) and (c) this many times, keep the fastest (default 1)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="compare mode: only (a) and (b), the median of N interleaved rounds for each connection "
        "count, with each --variant against the code here (the baseline)",
    )
    parser.add_argument(
        "--variant",
        type=parse_variant,
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="with --rounds: also run (a) with the `newsletter` package in DIR (repeatable)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile (a) with py-spy")
    parser.add_argument(
        "--targets",
        action="store_true",
        help="instead: run each target's own benchmark (throughput at 4 and 16 connections, ledger "
        "writes, personalised templates, start-up, 1,000,000 members) and print every figure against "
        "its target; takes about an hour",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if args.targets:
        return all_targets()
    if not (os.access(SMTP_SINK, os.X_OK) and os.access(SMTP_SOURCE, os.X_OK)):
        print(INSTALL_POSTFIX, file=sys.stderr)
        return 1
    if args.variant and not args.rounds:
        parser.error("--variant needs --rounds N")
    if len(args.connections) > 1 and not args.rounds:
        parser.error("several connection counts need --rounds N")
    for _, source in args.variant:
        check_variant(source)
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="newsletter-bench-"))
    conns = args.connections[0]
    try:
        t0 = time.perf_counter()
        sections = fit_sections(work / "fit", args.html_size)
        group = make_group(work / "group", args.members, sections)
        html_bytes, _ = html_size(group)
        _, mean_size = prebuilt(group, min(args.members, 2_000), work / "prebuilt.bin")
        sample = read_prebuilt(work / "prebuilt.bin")[0][2]
        (work / "message.eml").write_bytes(sample.replace(b"\r\n", b"\n"))  # smtp-source -F adds the CRLF
        mm_members = 0 if args.skip_mailmerge or args.rounds else min(args.members, args.mailmerge_max)
        mm_size = mailmerge_files(group, work / "mailmerge", mm_members) if mm_members else 0
        python = sys.version.split()[0]
        print(f"newsletter benchmark — {os.cpu_count()} CPUs, Python {python}, work folder {work}")
        print(
            f"list: {args.members:,} members; reminder HTML {html_bytes / 1024:.1f} KB after inlining "
            f"({sections} extra sections); connections: {', '.join(map(str, args.connections))}"
        )
        print(
            f"message sizes: (a)/(b) newsletter {mean_size:,} B (mean of the prebuilt), "
            f"(c) smtp-source -F the same message {len(sample):,} B"
            + (f", (d) mailmerge {mm_size:,} B" if mm_size else "")
        )
        print(f"set-up {time.perf_counter() - t0:.1f} s; before the runs: {load()}\n")

        sink = Sink()
        if args.rounds:
            try:
                labels = ", ".join(f"{label} = {source}" for label, source in args.variant)
                print(f"compare mode: baseline = {ROOT}" + (f"; variants: {labels}" if labels else "") + "\n")
                compare(args, group, work, sink.port, args.variant)
                print(f"after the runs: {load()}")
            finally:
                sink.close()
            return 0
        try:
            runs: list[Run] = []
            a, b, c = best(
                args.repeat,
                lambda: newsletter_send(group, sink.port, conns, args.members),
                lambda: aiosmtplib_alone(work / "prebuilt.bin", sink.port, conns, args.members),
                lambda: smtp_source(work / "message.eml", sink.port, conns, args.members),
            )
            runs += [a, b, c]
            boot = startup(work, sections, sink.port, conns, args.repeat)
            after_startup(a, boot)
            d = None
            if mm_members:
                d = mailmerge(work / "mailmerge", sink.port, mm_members)
                d.extra["conns"] = "1*"
                d.note = (
                    f"(first {mm_members:,} members) " if mm_members < args.members else ""
                ) + "*one connection per message, sequential: mailmerge has no option for more"
                runs.append(d)
            small = None
            if args.members > 10_000:
                small_group = make_group(work / "group-10k", 10_000, sections)
                [small] = best(
                    args.repeat,
                    lambda: newsletter_send(small_group, sink.port, conns, 10_000, "(a) newsletter"),
                )
                after_startup(small, boot)
                runs.append(small)
            tick, imported = noop_tick(group, sink.port, 5)
            print(table(runs, str(conns)))
            print(
                f"after the runs: {load()}" + ("" if GNU_TIME else "; peak RSS from wait4 (no /usr/bin/time)")
            )
            print(f"\nno-op `newsletter tick --at {IDLE_AT}`: {tick}")
            if imported:
                print(f"  imported by the no-op tick: {', '.join(imported)}")
            elif "n/a" not in tick and "failed" not in tick:
                print(f"  none of {', '.join(HEAVY)} imported")
            print("\nratios (messages/s):")
            print(f"  (a)/(b) newsletter / aiosmtplib alone = {a.rate / b.rate:.2f}")
            print(f"  (a)/(c) newsletter / smtp-source      = {a.rate / c.rate:.2f}")
            if d:
                print(f"  (a)/(d) newsletter / mailmerge        = {a.rate / d.rate:.1f}")
            print(f"  (b)/(c) aiosmtplib / smtp-source      = {b.rate / c.rate:.2f}")
            print("\nchecks:")
            print(check("(a) ≥ 0.85 × (b)", a.rate >= 0.85 * b.rate, f"{a.rate / b.rate:.2f}"))
            if d:
                print(check("(a) ≥ 8 × (d)", a.rate >= 8 * d.rate, f"{a.rate / d.rate:.1f}×"))
            if args.members >= 100_000:
                print(check("peak RSS < 150 MB at 100,000", a.rss_mb < 150, f"{a.rss_mb:.1f} MB"))
            if small is not None:
                growth = a.rss_mb / small.rss_mb - 1
                print(check("RSS growth 10,000 → this run ≤ 20 %", growth <= 0.20, f"{100 * growth:+.1f} %"))
            if "n/a" not in tick and "failed" not in tick:
                seconds = float(tick.split()[0])
                print(check("no-op tick < 0.3 s", seconds < 0.3, f"{seconds:.3f} s"))
            if args.slow_relay:
                print()
                slow_relay(args, group, work, sink, sections)
            if args.profile:
                print("\nprofile of (a):")
                print(profile_send(group, sink.port, conns, args.members, work))
        finally:
            sink.close()
    finally:
        if args.keep:
            print(f"\nwork folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def slow_relay(args: argparse.Namespace, group: Path, work: Path, sink: Sink, sections: int) -> None:
    """1, 4 and 16 connections to a relay whose every reply takes a while: latency, not CPU, limits."""
    if args.sink_delay:
        relay: Sink | DelayProxy = Sink("-W", f".:{args.sink_delay}")
        what = f"smtp-sink -W .:{args.sink_delay} (the end-of-data reply {args.sink_delay} s late)"
        per_conn = 4
    else:
        relay = DelayProxy(sink.port, args.rtt_ms)
        what = f"every smtp-sink reply held back {args.rtt_ms:g} ms by a relay in front of it"
        per_conn = 40
    print(f"slow relay: {what}")
    runs: list[Run] = []
    try:
        boot = startup(work, sections, relay.port, 1, 1)
        for n in (1, 4, 16):
            count = per_conn * n
            g = make_group(work / f"slow-{n}", count, sections)
            a = newsletter_send(g, relay.port, n, count, f"(a) newsletter ×{n}")
            a.extra["conns"] = n
            after_startup(a, boot)
            b = aiosmtplib_alone(work / "prebuilt.bin", relay.port, n, count)
            b.label, b.extra["conns"] = f"(b) aiosmtplib ×{n}", n
            c = smtp_source(work / "message.eml", relay.port, n, count)
            c.label, c.extra["conns"] = f"(c) smtp-source ×{n}", n
            runs += [a, b, c]
    finally:
        relay.close()
    print(table(runs, ""))


# --- helpers run in their own process -------------------------------------------------------------


def _aiosmtplib_child(path: str, port: str, connections: str, count: str) -> None:
    import aiosmtplib

    messages = read_prebuilt(Path(path))
    total, conns = int(count), int(connections)

    async def go() -> None:
        todo = iter(range(total))

        async def worker() -> None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=int(port), timeout=60)
            await client.connect()
            for i in todo:  # shared iterator: each message goes out once, over whichever connection is free
                sender, recipient, data = messages[i % len(messages)]
                await client.mail(sender)
                await client.rcpt(recipient)
                await client.data(data)
            await client.quit()

        await asyncio.gather(*(worker() for _ in range(conns)))

    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    asyncio.run(go())
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(json.dumps({"wall": wall, "cpu": cpu}))


def _proxy_child(listen: str, target: str, delay_ms: str) -> None:
    delay = float(delay_ms) / 1000

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", int(target))
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def up() -> None:
            while data := await client_r.read(1 << 16):
                server_w.write(data)
                await server_w.drain()
            server_w.close()

        async def down() -> None:
            while data := await server_r.read(1 << 16):
                held.put_nowait((loop.time() + delay, data))
            held.put_nowait(None)

        async def release() -> None:
            while (item := await held.get()) is not None:
                due, data = item
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        await asyncio.gather(up(), down(), release(), return_exceptions=True)

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", int(listen), backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_aiosmtplib":
        _aiosmtplib_child(*sys.argv[2:6])
    elif len(sys.argv) > 1 and sys.argv[1] == "_proxy":
        _proxy_child(*sys.argv[2:5])
    else:
        sys.exit(main())
