"""Reading is bounded (issue 12): a file over its cap is refused by name, and reading is linear in size."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsletter.errors import DataError
from newsletter.inputs.articles import load_article
from newsletter.inputs.limits import MB
from newsletter.inputs.members import check_file, read_subscribers
from newsletter.inputs.schedule import load_schedule, parse_schedule
from newsletter.inputs.sending_list import read_for_sending

ROOT = Path(__file__).resolve().parents[1]
COMMENT = "# a note an organiser left here, or a pasted export that went wrong\n"

# Each case runs in a fresh interpreter with a deadline: a regression to quadratic reading (1 MB of
# comments once took 18 s) fails by timing out, while the time printed shows the real cost.
LOAD = """
import sys, time
from pathlib import Path
from newsletter.errors import DataError
from newsletter.inputs.schedule import load_schedule, parse_schedule
start = time.perf_counter()
try:
    schedule = load_schedule(Path(sys.argv[1]))
    print("loaded", len(schedule.meetings), "meetings")
except DataError as err:
    print(err)
print(f"{time.perf_counter() - start:.2f} s", file=sys.stderr)
"""


def load_in_subprocess(path: Path) -> str:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(path)], capture_output=True, text=True, timeout=10, check=True
    )
    print(f"{path.stat().st_size / MB:.1f} MB: {done.stderr.strip()} ({time.perf_counter() - started:.2f} s)")
    return done.stdout


def test_a_12_mb_comment_only_schedule_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(COMMENT * (12 * MB // len(COMMENT) + 1), encoding="utf-8")
    out = load_in_subprocess(path)
    assert out.startswith("schedule.yaml: the file is larger than 5 MB, the most this program reads — ")


@pytest.mark.parametrize(
    ("shape", "unit"),
    [
        ("comments", COMMENT),
        ("short-comments", "#\n"),
        ("blank-lines", "\n"),
        ("indented-comments", "    # indented\r\n\r\n"),
        ("one-long-comment", None),
    ],
)
def test_a_comment_only_schedule_under_the_cap_is_read_in_linear_time(
    tmp_path: Path, shape: str, unit: str | None
) -> None:
    size = 5 * MB - 1024
    text = "#" + "x" * (size - 2) + "\n" if unit is None else unit * (size // len(unit))
    path = tmp_path / "schedule.yaml"
    path.write_text(text, encoding="utf-8", newline="")
    assert load_in_subprocess(path).startswith("schedule.yaml: the file is empty — ")


def test_a_schedule_full_of_comments_still_loads_with_its_lines(tmp_path: Path) -> None:
    sample = (ROOT / "schedule.yaml").read_text(encoding="utf-8")
    padding = COMMENT * (2 * MB // len(COMMENT))
    path = tmp_path / "schedule.yaml"
    path.write_text(padding + sample + padding, encoding="utf-8")
    assert load_in_subprocess(path).startswith("loaded 7 meetings")
    schedule = load_schedule(path)
    offset = padding.count("\n")
    assert schedule.meetings[0].line == offset + sample.splitlines().index("    - date: 2026-12-08") + 1


def test_the_schedule_cap_names_the_file_and_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_bytes(b"#" * (5 * MB + 1))
    with pytest.raises(DataError) as caught:
        load_schedule(path, "group/schedule.yaml")
    (problem,) = caught.value.problems
    assert (problem.path, problem.line) == ("group/schedule.yaml", None)
    assert "larger than 5 MB" in problem.message
    assert "a schedule is a few kilobytes" in problem.hint
    path.write_bytes(b"#" * (5 * MB - 1) + b"\n")  # at the cap: read (and found empty)
    with pytest.raises(DataError) as caught:
        load_schedule(path)
    assert caught.value.problems[0].message == "the file is empty"


def test_the_article_cap_names_the_file_and_the_cap(tmp_path: Path) -> None:
    articles = tmp_path / "content" / "articles"
    articles.mkdir(parents=True)
    front = "---\ntitle: A\nauthor: B\ndate: 2013-10-12\n---\n"
    (articles / "big.md").write_text(front + "Words. " * (5 * MB // 7 + 1), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_article(tmp_path / "content", "big")
    (problem,) = caught.value.problems
    assert str(problem).startswith("content/articles/big.md: the file is larger than 5 MB")


def test_the_subscribers_cap_names_the_file_and_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    with path.open("wb") as file:  # sparse: 200 MB on paper, a few bytes on disk
        file.write(b"email,name\nann@example.org,Ann\n")
        file.seek(200 * MB)
        file.write(b"\n")
    for read in (read_subscribers, check_file, read_for_sending):
        with pytest.raises(DataError) as caught:
            read(path)  # type: ignore[operator]
        (problem,) = caught.value.problems
        assert str(problem).startswith(
            "subscribers.csv: the file is larger than 200 MB, the most this program"
        )


def test_schedule_text_over_the_cap_is_refused_too() -> None:
    with pytest.raises(DataError) as caught:
        parse_schedule("#" * (5 * MB + 1), "club/schedule.yaml")
    assert str(caught.value).startswith("club/schedule.yaml: the file is larger than 5 MB")
