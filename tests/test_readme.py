"""README's library examples run as written, one after the other, on a small tree."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import hashpar
from conftest import build_tree

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.timeout(60)
def test_the_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    assert len(blocks) >= 2
    build_tree(tmp_path / "photos", {"a.jpg": b"a", "b/c.jpg": b"c", "skip.tmp": b"t"})
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {"__name__": "__main__"}  # as a script runs
    for block in blocks:
        exec(compile(block, str(README), "exec"), scope)
    assert scope["manifest"] is not None  # the first block's guarded work ran
    report = scope["report"]
    assert isinstance(report, hashpar.Report)
    assert not report.differs and report.verified == 2  # skip.tmp excluded
    assert sorted(os.listdir(tmp_path)) == ["photos", "photos.json"]


@pytest.mark.timeout(60)
def test_the_first_example_runs_as_a_script_when_workers_are_spawned(tmp_path: Path) -> None:
    """Under spawn each worker imports the main module: the example's guard is what works."""
    block = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)[0]
    build_tree(tmp_path / "photos", {f"{n}.jpg": b"%d" % n for n in range(1500)})  # > 1 task
    (tmp_path / "example.py").write_text(block)
    result = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env={**os.environ, "HASHPAR_START_METHOD": "spawn"},
        capture_output=True,
        timeout=50,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == b"1500 files, 0 errors\n"
    assert len(hashpar.load_manifest(str(tmp_path / "photos.json")).files) == 1500
