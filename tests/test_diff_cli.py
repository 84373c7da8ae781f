"""``hashpar diff OLD NEW``: two manifests compared without touching the disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import build_tree, run_hashpar

pytestmark = pytest.mark.timeout(60)

SPEC = {"same": b"same", "edit": b"before", "gone": b"gone", "old/name": b"moving", "lnk": b"x"}


def make(root: Path, manifest: Path, *args: str) -> None:
    result = run_hashpar("make", root, "-o", manifest, *args)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def manifests(tmp_path: Path) -> tuple[Path, Path]:
    root = build_tree(tmp_path / "tree", SPEC)
    make(root, tmp_path / "old.json")
    (root / "edit").write_bytes(b"after")
    (root / "gone").unlink()
    (root / "added").write_bytes(b"added")
    (root / "new").mkdir()
    (root / "old" / "name").rename(root / "new" / "name")
    (root / "lnk").unlink()
    (root / "lnk").symlink_to("same")
    make(root, tmp_path / "new.json")
    shutil.rmtree(root)  # diff never looks at the disk
    return tmp_path / "old.json", tmp_path / "new.json"


def test_diff_reports_every_change(manifests: tuple[Path, Path]) -> None:
    old, new = manifests
    result = run_hashpar("diff", old, new)
    assert (result.returncode, result.stderr) == (1, b"")
    assert result.stdout.decode().splitlines() == [
        "MODIFIED edit",
        "MODIFIED lnk",
        "MISSING gone",
        "NEW added",
        "MOVED old/name -> new/name",
        "hashpar: 5 entries compared: 1 ok, 2 modified, 1 missing, 1 new, 1 moved, 0 errors",
    ]
    document = json.loads(run_hashpar("diff", "--json", old, new).stdout)
    assert document["modified"] == ["edit", "lnk"]
    assert document["moved"] == [{"from": "old/name", "to": "new/name"}]
    assert document["summary"] == {
        "ok": 1,
        "modified": 2,
        "missing": 1,
        "new": 1,
        "moved": 1,
        "errors": 0,
        "verified": 5,
        "ignore_new": False,
        "new_files_checked": True,
        "malformed": 0,
        "conflicting": 0,
    }


def test_a_manifest_diffed_with_itself_is_identical(manifests: tuple[Path, Path]) -> None:
    old, _ = manifests
    result = run_hashpar("diff", old, "-", stdin=old.read_bytes())
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == (
        b"hashpar: 5 entries compared: 5 ok, 0 modified, 0 missing, 0 new, 0 moved, 0 errors\n"
    )
    assert run_hashpar("diff", "-q", old, old).stdout == b""


def test_different_algorithms_cannot_be_compared(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "tree", SPEC)
    make(root, tmp_path / "b3.json")
    make(root, tmp_path / "sha.json", "--algo", "sha256")
    result = run_hashpar("diff", tmp_path / "b3.json", tmp_path / "sha.json")
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr == (
        b"hashpar: error: cannot compare a blake3 manifest with a sha256 manifest: "
        b"digests of different algorithms never match\n"
    )


def test_an_unusable_manifest_is_named(manifests: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = manifests
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1}')
    result = run_hashpar("diff", old, bad)
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == (
        f"hashpar: error: {bad}: invalid manifest: Object missing required field `algorithm`\n"
    )


def test_both_from_standard_input_is_a_usage_error(manifests: tuple[Path, Path]) -> None:
    result = run_hashpar("diff", "-", "-", stdin=b"")
    assert result.returncode == 2
    assert result.stderr.decode().startswith("hashpar: error: ")
    assert "only one of OLD and NEW can be standard input" in result.stderr.decode()
    assert result.stderr.count(b"\n") == 1
