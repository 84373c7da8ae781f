"""Workers never outlive hashpar, even when it is killed outright (SIGKILL, the OOM killer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry))
    return members


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_workers_exit_when_the_parent_is_killed(tmp_path: Path, method: str) -> None:
    for name in ("a", "b"):  # sparse: seconds of SHA-256 each, no disk space
        with open(tmp_path / name, "wb") as f:
            f.truncate(8 << 30)
    process = subprocess.Popen(
        [sys.executable, "-m", "hashpar", "make", str(tmp_path), "--algo", "sha256", "-j", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HASHPAR_START_METHOD": method},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(group_members(process.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)  # the parent and both workers
        assert len(group_members(process.pid)) >= 3, "workers never started"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while group_members(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_members(process.pid) == []
    finally:
        for pid in group_members(process.pid):
            os.kill(pid, signal.SIGKILL)
