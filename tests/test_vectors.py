"""Official test vectors, written to files and hashed through hashpar's real file path.

Every BLAKE3 vector (BLAKE3-team) and every NIST CAVP SHA-256 byte-oriented vector is a file
in one tree; the tree is hashed by ``scan_tree`` with read buffers below, at and around the
BLAKE3 chunk (1024 bytes) and the SHA-256 block (64 bytes), with tiny byte budgets (so files
are deferred and resubmitted as solo tasks), with threaded BLAKE3, in-process and in a pool.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hashpar import Algorithm, Tuning, scan_tree
from hashpar.engine import new_task
from hashpar.hashing import run_task
from hashpar.scan import Scope

DATA = Path(__file__).parent / "data"


def blake3_vectors() -> dict[str, tuple[bytes, str]]:
    """name -> (input, expected hex); input byte i is i % 251."""
    cases = json.loads((DATA / "blake3_test_vectors.json").read_text())["cases"]
    return {
        f"b3_{case['input_len']:06d}": (
            bytes(i % 251 for i in range(case["input_len"])),
            case["hash"][:64],
        )
        for case in cases
    }


def sha256_vectors() -> dict[str, tuple[bytes, str]]:
    """name -> (message, expected hex) from both NIST .rsp files (Len is in bits)."""
    vectors = {}
    for source in ("SHA256ShortMsg.rsp", "SHA256LongMsg.rsp"):
        record: dict[str, str] = {}
        for line in (DATA / source).read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition("="))
            if key in ("Len", "Msg", "MD"):
                record[key] = value
            if key == "MD":
                length = int(record["Len"]) // 8
                message = bytes.fromhex(record["Msg"])[:length]
                vectors[f"sha_{source[6:11]}_{length:06d}"] = (message, record["MD"])
    return vectors


def write_tree(root: Path, vectors: dict[str, tuple[bytes, str]]) -> None:
    root.mkdir()
    for name, (content, _) in vectors.items():
        (root / name).write_bytes(content)


def test_the_vector_files_are_complete() -> None:
    assert len(blake3_vectors()) == 35
    assert len(sha256_vectors()) == 65 + 64  # every record of both files, none lost


TUNINGS = [
    pytest.param(Tuning(buffer_size=size), id=f"buffer-{size}")
    for size in (1, 63, 64, 65, 1023, 1024, 1025, 4096, 1 << 20)
] + [
    pytest.param(Tuning(buffer_size=1000, batch_bytes=1000, batch_files=3), id="deferred-solo"),
]


@pytest.mark.parametrize("tuning", TUNINGS)
@pytest.mark.parametrize(
    ("algorithm", "vectors"),
    [(Algorithm.BLAKE3, blake3_vectors()), (Algorithm.SHA256, sha256_vectors())],
    ids=["blake3", "sha256"],
)
def test_vectors_in_process(
    tmp_path: Path, algorithm: Algorithm, vectors: dict[str, tuple[bytes, str]], tuning: Tuning
) -> None:
    write_tree(tmp_path / "v", vectors)
    snapshot = scan_tree(str(tmp_path / "v"), algorithm=algorithm, jobs=1, tuning=tuning)
    assert not snapshot.errors
    assert {name: entry.digest for name, entry in snapshot.files.items()} == {
        name: digest for name, (_, digest) in vectors.items()
    }
    assert all(snapshot.files[n].size == len(c) for n, (c, _) in vectors.items())


@pytest.mark.timeout(60)
@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_vectors_through_a_worker_pool(tmp_path: Path, algorithm: Algorithm) -> None:
    vectors = blake3_vectors() if algorithm is Algorithm.BLAKE3 else sha256_vectors()
    write_tree(tmp_path / "v", vectors)
    tuning = Tuning(buffer_size=1024, batch_files=7, batch_bytes=4096, inline_max_files=0)
    snapshot = scan_tree(str(tmp_path / "v"), algorithm=algorithm, jobs=2, tuning=tuning)
    assert {n: e.digest for n, e in snapshot.files.items()} == {
        n: d for n, (_, d) in vectors.items()
    }


@pytest.mark.parametrize("buffer_size", [1024, 4096, 1 << 20])
def test_blake3_vectors_with_threads_inside_one_file(tmp_path: Path, buffer_size: int) -> None:
    """The path a lone big file takes: a solo task hashed by BLAKE3 with several threads."""
    vectors = blake3_vectors()
    write_tree(tmp_path / "v", vectors)
    for name, (_, expected) in vectors.items():
        task = new_task(Scope(root=str(tmp_path / "v")), "blake3")._replace(
            groups=[("", [name])],
            buffer_size=buffer_size,
            batch_bytes=1,
            batch_files=1,
            solo=True,
            threads=2,
            threads_min=0,
        )
        result = run_task(task)
        assert result.path_list() == [name] and result.hex_digests() == [expected]
