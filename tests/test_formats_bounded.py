"""Reading checksum files, pure: what is no checksum file is refused after its first lines,
problem lines are kept up to a bound and counted in full, a path listed again with another
digest is a conflicting line, and input is consumed a line at a time (never held whole).

Names new in this change are reached through their modules (``formats.LineKind``), so that
each test fails on its own, with its own reason, against code that lacks them.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator

import pytest

from hashpar import formats
from hashpar.errors import ManifestError
from hashpar.formats import MalformedLine, parse_bagit, parse_checksums, records
from hashpar.kinds import Algorithm

A = hashlib.sha256(b"a").hexdigest()
B = hashlib.sha256(b"b").hexdigest()
NOT_A_LINE = "not a checksum line: expected '<hex digest>  <path>' or 'ALGO (path) = hex'"


@pytest.mark.parametrize("line", [b"2", b"2 x", b"deadbeef x", b"123456"])
def test_a_line_without_a_digest_is_not_said_to_lack_two_spaces(line: bytes) -> None:
    """``2`` has no digest: "expected two spaces between the digest and the path" was wrong."""
    parsed = parse_checksums(
        A.encode() + b"  a\n" + line + b"\n", source="S", algorithm=Algorithm.SHA256
    )
    assert parsed.malformed == (MalformedLine(2, NOT_A_LINE),)


def test_text_without_a_checksum_line_in_its_first_lines_is_not_a_checksum_file() -> None:
    numbers = "".join(f"{n}\n" for n in range(1, 200_001)).encode()
    with pytest.raises(ManifestError) as info:
        parse_checksums(numbers, source="n.txt", algorithm=Algorithm.SHA256)
    assert (
        str(info.value)
        == f"n.txt: not a checksum file: no checksum line in lines 1-10 (line 1: {NOT_A_LINE})"
    )
    assert type(info.value).__name__ == "NotAChecksumFile"
    with pytest.raises(ManifestError) as info:  # comments and blank lines count as lines read
        parse_checksums(b"# c\n\nxx\n", source="s", algorithm=Algorithm.SHA256)
    assert str(info.value) == f"s: not a checksum file: line 3: {NOT_A_LINE}"
    # nine lines of anything, then a checksum line: a checksum file (a signed one has three)
    signed = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + b"junk\n" * 7
    parsed = parse_checksums(signed + A.encode() + b"  a\n", source="SHA256SUMS")
    assert parsed.manifest.algorithm is Algorithm.SHA256
    assert [m.line for m in parsed.malformed] == [1, 2, *range(4, 11)]


def test_a_hashpar_manifest_is_named_as_such() -> None:
    manifest = b'{\n  "version": 1,\n  "generator": "hashpar 0.1.0",\n  "algorithm": "sha256",\n'
    for text in (manifest, b'{"version":1,"files":{}}\n'):
        with pytest.raises(ManifestError) as info:
            parse_checksums(text, source="m.json", only=formats.ChecksumFormat.SUMS)
        assert str(info.value) == (
            "m.json: JSON, not a checksum file (a hashpar manifest is verified without "
            "--format; hashpar export writes sums from one)"
        )
    with pytest.raises(ManifestError, match=r"^x: JSON, not a checksum file: line 1: "):
        parse_checksums(b'["a"]\n', source="x")


def counted(lines: Iterator[bytes], taken: list[int]) -> Iterator[bytes]:
    for line in lines:
        taken[0] += 1
        yield line


def test_endless_input_that_is_no_checksum_file_is_read_no_further_than_its_first_lines() -> None:
    taken = [0]
    with pytest.raises(formats.NotAChecksumFile):
        formats.parse_checksum_lines(
            counted(itertools.repeat(b"y"), taken), source="-", algorithm=Algorithm.SHA256
        )
    assert taken == [10]


def test_problem_lines_are_kept_up_to_a_bound_and_all_counted() -> None:
    """A good line then 5,000 bad ones (and a conflict): memory holds MAX_KEPT of them."""
    lines = [A.encode() + b"  a", *(b"y" for _ in range(5_000)), B.encode() + b"  a"]
    parsed = formats.parse_checksum_lines(iter(lines), source="s", algorithm=Algorithm.SHA256)
    kept = records.MAX_KEPT
    assert (parsed.problems.malformed, parsed.problems.conflicting) == (5_000, 1)
    assert parsed.problems.total == 5_001
    assert [m.line for m in parsed.malformed] == list(range(2, kept + 2))
    assert len(parsed.malformed) == kept


def test_a_path_listed_again_with_another_digest_is_a_conflicting_line() -> None:
    """sha256sum -c and b3sum --check report the line whose digest does not match as FAILED:
    hashpar checks the first line's digest and reports the other line as conflicting."""
    text = f"{A}  x\n{B}  ./x\n{A}  x\n".encode()
    parsed = parse_checksums(text, source="S", algorithm=Algorithm.SHA256)
    conflicting = formats.LineKind.CONFLICTING
    assert parsed.malformed == (
        MalformedLine(
            2,
            "x is listed again with another digest (first on line 1, whose digest is checked)",
            conflicting,
        ),
        MalformedLine(3, "x is listed again (first on line 1)"),
    )
    assert parsed.manifest.files["x"].digest == A


def test_a_line_that_waits_for_the_algorithm_keeps_its_place() -> None:
    """A CRLF line's name depends on the algorithm (sha256sum drops the CR, b3sum keeps it),
    which a later BSD tag decides: the line waits, and is still the first to list its path."""
    text = f"{A}  x\r\n{B}  x\nSHA256 (y) = {A}\n".encode()
    parsed = parse_checksums(text, source="sums.txt")
    assert parsed.manifest.algorithm is Algorithm.SHA256
    assert parsed.manifest.files["x"].digest == A
    assert [(m.line, m.kind) for m in parsed.malformed] == [(2, formats.LineKind.CONFLICTING)]
    assert "(first on line 1, whose digest is checked)" in parsed.malformed[0].message


def test_a_bag_manifest_reports_conflicts_and_refuses_what_is_no_manifest() -> None:
    text = f"{A}  data/x\r{B}  data/x\n".encode()
    parsed = parse_bagit(text, source="manifest-sha256.txt", root="data")
    assert [(m.line, m.kind) for m in parsed.malformed] == [(2, formats.LineKind.CONFLICTING)]
    with pytest.raises(ManifestError, match=r"^m: not a checksum file: no checksum line in"):
        parse_bagit(b"y\n" * 100, source="m", root="data")
