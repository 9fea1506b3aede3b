from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from newsletter.cli.entry import main

from . import browser
from .smtpd import Recorder, Server

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ("schedule.yaml", "subscribers.csv", "content", "templates")
#: A moment before the sample's first reminder (2026-12-01 09:00 New York).
BEFORE_FIRST = "2026-12-01T09:05"  # the first reminder (the dinner's week-before) is due


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked ``browser`` skip (or, in CI, fail) in one place when Chromium is missing."""
    if item.get_closest_marker("browser") is not None:
        browser.require_browser()


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the shipped sample group, as shipped, in a temporary folder."""
    target = tmp_path / "group"
    target.mkdir()
    for name in SAMPLE:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, target / name)
        else:
            shutil.copy(src, target / name)
    return target


@pytest.fixture
def group(sample: Path) -> Path:
    """The sample group once its organisers filled in their details: the example venue's
    `placeholder: true` mark is gone, so real mail may go out (see the `sample` fixture for the
    folder exactly as shipped)."""
    path = sample / "schedule.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(
        "".join(ln for ln in lines if not ln.strip().startswith("placeholder: true")), encoding="utf-8"
    )
    return sample


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own settings."""
    for key in list(os.environ):
        if key.startswith(("SMTP_", "NEWSLETTER_")):
            monkeypatch.delenv(key)


@pytest.fixture
def smtp() -> Iterator[Server]:
    with Server(Recorder()) as server:
        yield server


CliRunner = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run the real CLI in-process, through the installed command's entry point (a no-op `tick` may
    answer from its idle note): run(group, "send", ...) → (exit code, stdout, stderr)."""

    def go(home: Path, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--dir", str(home), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return go
