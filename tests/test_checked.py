"""What `check` keeps of its reading of the group's files (``newsletter.checked``): the next `check`
on the same bytes takes it as found; any change to a file is read anew, and a damaged or foreign
entry is never trusted."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter import checked
from newsletter.checked import Checked

from .conftest import CliRunner


def kept(group: Path) -> Path:
    return group / ".newsletter" / "cache" / "checked"


def check(run: CliRunner, group: Path) -> tuple[int, str, str]:
    return run(group, "check")


def test_a_second_check_says_the_same_from_what_the_first_kept(group: Path, run: CliRunner) -> None:
    first = check(run, group)
    assert first[0] == 0 and len(list(kept(group).iterdir())) == 3  # schedule, article, list
    assert check(run, group) == first


def test_a_new_bad_row_is_found_even_when_the_file_keeps_its_size_and_time(
    group: Path, run: CliRunner
) -> None:
    assert check(run, group)[0] == 0
    path = group / "subscribers.csv"
    text, stat = path.read_text(encoding="utf-8"), path.stat()
    path.write_text(text.replace("linda.harper@example.org", "linda.harper@example@rg", 1), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    code, out, err = check(run, group)
    assert code == 1 and "subscribers.csv:2:" in err and "linda" not in err
    path.write_text(text, encoding="utf-8")
    assert check(run, group)[0] == 0


def test_a_schedule_or_article_mistake_is_found_after_a_clean_check(group: Path, run: CliRunner) -> None:
    assert check(run, group)[0] == 0
    schedule = group / "schedule.yaml"
    text = schedule.read_text(encoding="utf-8")
    schedule.write_text(text.replace('time: "18:00"', 'time: "25:00"', 1), encoding="utf-8")
    code, _, err = check(run, group)
    assert code == 1 and "schedule.yaml:" in err
    schedule.write_text(text, encoding="utf-8")
    article = group / "content" / "articles" / "second-opinion.md"
    body = article.read_text(encoding="utf-8")
    article.write_text(body.replace("date: 2013-10-12", "date: 2013-13-12", 1), encoding="utf-8")
    code, _, err = check(run, group)
    assert code == 1 and "second-opinion.md" in err
    article.write_text(body, encoding="utf-8")
    assert check(run, group)[0] == 0


def test_a_damaged_or_foreign_entry_is_read_anew_and_never_run(
    group: Path, run: CliRunner, tmp_path: Path
) -> None:
    first = check(run, group)
    entries = sorted(kept(group).iterdir())
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:-3])  # truncated: its checksum no longer holds
    assert check(run, group) == first
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps((Evil(), []))
    key = Checked(group / ".newsletter").key_of_schedule(group / "schedule.yaml")
    assert key is not None
    check_sum = hashlib.blake2b(payload, digest_size=16).hexdigest().encode()
    (kept(group) / key).write_bytes(check_sum + b"\n" + payload)  # well formed, but not a schedule
    assert check(run, group) == first
    assert not marker.exists()


def test_what_is_kept_of_the_list_holds_no_member_data(group: Path, run: CliRunner) -> None:
    path = group / "subscribers.csv"
    with path.open("a", encoding="utf-8") as rows:
        rows.write(
            "=cmd@example.org,Eve Formula\nlinda.harper@example.org,Linda Again\nnot-an-address,Bad Row\n"
        )
    code, _, err = check(run, group)
    assert code == 1, err
    assert check(run, group)[2] == err  # the same problems, from what was kept
    members = [line.split(",")[0] for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    names = ["Linda Harper", "Eve Formula", "Linda Again", "Bad Row", "not-an-address"]
    key = Checked(group / ".newsletter").key_of_members(path)
    assert key is not None
    data = (kept(group) / key).read_bytes()
    for value in [*members, *names]:
        assert value.encode() not in data, value


def test_send_and_tick_never_take_what_check_kept(group: Path, run: CliRunner) -> None:
    """`check` alone reuses its answers: a send reads the files itself (here: a list now broken past
    reading, which the kept answer would have called clean)."""
    assert check(run, group)[0] == 0
    (group / "subscribers.csv").write_bytes("\ufeffemail,name\n".encode("utf-16"))
    code, _, err = run(group, "send", "--at", "2026-12-01T09:05")
    assert code == 1 and "UTF-16" in err
    done = subprocess.run(
        [sys.executable, "-c", "import newsletter.project, sys; print('newsletter.checked' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"


def test_the_answers_kept_stay_few(group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checked, "KEPT", 4)
    path = group / "subscribers.csv"
    text = path.read_text(encoding="utf-8")
    for n in range(6):  # six versions of the list, each checked
        path.write_text(text + f"member{n}@example.org,Member {n}\n", encoding="utf-8")
        assert check(run, group)[0] == 0
    assert len(list(kept(group).iterdir())) == 4
    assert check(run, group)[0] == 0  # the newest answers are among those kept
