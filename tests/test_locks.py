"""The named locks of the state folder (``state.locks.held``): one holder at a time, whether the other
is this process or another; a killed holder leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from newsletter.state.locks import held

HOLDER = (
    "import sys\n"
    "from pathlib import Path\n"
    "from newsletter.state.locks import held\n"
    "with held(Path(sys.argv[1]), 'send', wait=0) as got:\n"
    "    print('held' if got else 'busy', flush=True)\n"
    "    sys.stdin.read()\n"
)


def test_one_holder_at_a_time_in_one_process(tmp_path: Path) -> None:
    with held(tmp_path, "send", wait=0) as first:
        assert first
        with held(tmp_path, "send", wait=0.1) as second:
            assert not second  # the same lock taken again waits like any other run
        with held(tmp_path, "bounces", wait=0) as other:
            assert other  # another name is another lock
    with held(tmp_path, "send", wait=0) as again:
        assert again  # let go when the block ended


def test_a_killed_holder_leaves_the_lock_free(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with held(tmp_path, "send", wait=0.1) as got:
            assert not got
    finally:
        child.kill()  # kill -9: no release, no clean-up
        child.wait(timeout=60)
    with held(tmp_path, "send", wait=0) as got:
        assert got
