"""README's library examples run as written, one after the other, on a small tree."""

from __future__ import annotations

import os
import re
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
    scope: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), scope)
    report = scope["report"]
    assert isinstance(report, hashpar.Report)
    assert not report.differs and report.verified == 2  # skip.tmp excluded
    assert sorted(os.listdir(tmp_path)) == ["photos", "photos.json"]
