"""Shared fixtures: build trees from a dict, and run the real command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

CLI_TIMEOUT = 120

TreeSpec = Mapping[str | bytes, bytes | str]
"""Relative path -> file content (bytes) or "DIR" for an empty directory."""


def build_tree(root: Path, spec: TreeSpec) -> Path:
    """Create files (parents as needed) under ``root``; bytes keys allow non-UTF-8 names."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in spec.items():
        path = os.path.join(os.fsencode(root), os.fsencode(name))
        if content == "DIR":
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        assert isinstance(content, bytes)
        with open(path, "wb") as f:
            f.write(content)
    return root


def run_hashpar(
    *args: str | os.PathLike[str],
    cwd: str | os.PathLike[str] | None = None,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m hashpar ARGS`` (this checkout's code) and capture everything."""
    return subprocess.run(
        [sys.executable, "-m", "hashpar", *map(os.fspath, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[TreeSpec], Path]:
    """A factory: ``tree({"a.txt": b"hi"})`` builds the tree in a fresh directory."""
    return lambda spec: build_tree(tmp_path / "tree", spec)
