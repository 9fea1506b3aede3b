"""The deployment examples work as shipped: the crontab line, run by a real shell in a fresh folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, SAMPLE


def test_the_crontab_line_runs_in_a_fresh_folder_and_writes_a_timestamped_log(tmp_path: Path) -> None:
    folder = tmp_path / "srv newsletter"  # a space in the path too
    folder.mkdir()
    for name in SAMPLE:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, folder / name)
    line = next(
        raw
        for raw in (ROOT / "deploy" / "crontab.example").read_text().splitlines()
        if raw.strip() and not raw.startswith("#")
    )
    command = line.split(None, 5)[5]  # after the five time fields
    command = command.replace("cd /srv/newsletter", f"cd '{folder}'")
    command = command.replace(".venv/bin/newsletter", f"'{Path(sys.executable).parent / 'newsletter'}'")
    for _ in range(2):
        done = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    log = (folder / ".newsletter" / "tick.log").read_text(encoding="utf-8").splitlines()
    assert len(log) >= 2
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} ", entry) for entry in log), log
