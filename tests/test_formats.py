"""The format rules, pure: golden files, round trips, malformed lines, inference, BagIt tags."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashpar.errors import ManifestError, UsageError
from hashpar.formats import (
    ChecksumFormat,
    LineKind,
    MalformedLine,
    NoChecksumLines,
    algorithm_from_name,
    encode,
    encode_bagit,
    encode_bsd,
    encode_sums,
    parse_bagit,
    parse_checksums,
)
from hashpar.formats.bagit import bag_info, check_bagit_txt, decode_path, tag_manifest
from hashpar.formats.records import clean_path
from hashpar.models import Algorithm, FileEntry, Manifest, Snapshot

GOLDEN = Path(__file__).parent / "data" / "formats"

ODD_NAMES = [
    "plain.txt",
    "sp ace.txt",
    "-dash",
    "new\nline",
    "cr\rret",
    "ends in cr\r",
    "back\\slash",
    "pct%25%41",
    "uni \u00e9.txt",  # NFC
    "uni e\u0301.txt",  # NFD: a different name
    "tab\tname",
    " lead",
    "trail ",
    "(paren) = x",
    "dir/sub.txt",
]
"""The golden tree: each file holds b"content of " + its name (see tests/data/formats)."""

A = "a" * 64
B = "b" * 64


def digest(algorithm: Algorithm, data: bytes) -> str:
    if algorithm is Algorithm.SHA256:
        return hashlib.sha256(data).hexdigest()
    return str(blake3.blake3(data).hexdigest())


def manifest_of(algorithm: Algorithm, files: dict[str, str], root: str = ".") -> Manifest:
    entries = {
        path: FileEntry(size=None, digest=hexdigest, mtime_ns=None)
        for path, hexdigest in files.items()
    }
    return Manifest(algorithm, root, "", "", Snapshot(files=entries))


def golden_manifest(algorithm: Algorithm) -> Manifest:
    return manifest_of(
        algorithm, {name: digest(algorithm, b"content of " + name.encode()) for name in ODD_NAMES}
    )


GOLDEN_FILES = [
    # file, algorithm, format; SHA256SUMS, B3SUMS and sha256.bsd are the real tools' output
    ("SHA256SUMS", Algorithm.SHA256, ChecksumFormat.SUMS),
    ("B3SUMS", Algorithm.BLAKE3, ChecksumFormat.SUMS),
    ("sha256.bsd", Algorithm.SHA256, ChecksumFormat.BSD),
    ("blake3.bsd", Algorithm.BLAKE3, ChecksumFormat.BSD),
]


# -- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "algorithm", "fmt"), GOLDEN_FILES)
def test_encoders_write_the_golden_bytes(
    name: str, algorithm: Algorithm, fmt: ChecksumFormat
) -> None:
    assert encode(golden_manifest(algorithm), fmt) == (GOLDEN / name).read_bytes()


@pytest.mark.parametrize(("name", "algorithm", "fmt"), GOLDEN_FILES)
def test_golden_files_parse_to_the_tree(
    name: str, algorithm: Algorithm, fmt: ChecksumFormat
) -> None:
    parsed = parse_checksums((GOLDEN / name).read_bytes(), source=name)  # algorithm from name/tag
    assert parsed.manifest.algorithm is algorithm
    assert parsed.manifest.files == golden_manifest(algorithm).files
    assert parsed.malformed == ()
    assert parsed.formats == {fmt}


def test_bagit_golden_manifest() -> None:
    golden = (GOLDEN / "manifest-sha256.txt").read_bytes()
    assert encode_bagit(golden_manifest(Algorithm.SHA256)) == golden
    assert b"  data/new%0Aline\n" in golden
    assert b"  data/ends in cr%0D\n" in golden
    assert b"  data/pct%2525%2541\n" in golden  # '%' itself is encoded: RFC 8493, not bagit-python
    parsed = parse_bagit(golden, source="manifest-sha256.txt", root="bag/data")
    assert parsed.manifest.files == golden_manifest(Algorithm.SHA256).files
    assert parsed.manifest.root == "bag/data"


def test_the_two_sums_dialects_differ_only_where_the_tools_do() -> None:
    b3 = (GOLDEN / "B3SUMS").read_bytes()
    sha = (GOLDEN / "SHA256SUMS").read_bytes()
    assert b"  ends in cr\r\n" in b3  # b3sum: a carriage return is not escaped
    assert b"\\" + hashlib.sha256(b"content of ends in cr\r").hexdigest().encode() in sha
    assert b"  ends in cr\\r\n" in sha  # sha256sum: it is


# -- round trips ------------------------------------------------------------------------------

_SEGMENT = st.text(
    alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=8,
)
_PATH = (
    st.lists(_SEGMENT, min_size=1, max_size=3)
    .map("/".join)
    .filter(lambda p: clean_path(p) == (p, None))
)
_RAW_PATH = st.builds(
    lambda p, raw: p + os.fsdecode(raw),
    _PATH,
    st.binary(min_size=0, max_size=3).filter(lambda b: b"/" not in b and b"\0" not in b),
).filter(lambda p: clean_path(p) == (p, None))


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(
    st.dictionaries(_PATH, st.sampled_from([A, B]), min_size=1, max_size=6),
    st.sampled_from(list(Algorithm)),
    st.sampled_from([ChecksumFormat.SUMS, ChecksumFormat.BSD]),
)
def test_sums_round_trip(files: dict[str, str], algorithm: Algorithm, fmt: ChecksumFormat) -> None:
    manifest = manifest_of(algorithm, files)
    if (
        algorithm is Algorithm.BLAKE3
        and fmt is ChecksumFormat.SUMS
        and any("\ufffd" in p for p in files)
    ):
        with pytest.raises(ManifestError, match="U\\+FFFD"):
            encode(manifest, fmt)
        return
    parsed = parse_checksums(encode(manifest, fmt), source="x", algorithm=algorithm)
    assert parsed.manifest.files == manifest.files
    assert parsed.malformed == ()


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(st.dictionaries(_RAW_PATH, st.sampled_from([A, B]), min_size=1, max_size=6))
def test_gnu_sha256_round_trips_names_that_are_not_utf8(files: dict[str, str]) -> None:
    manifest = manifest_of(Algorithm.SHA256, files)
    for fmt in (ChecksumFormat.SUMS, ChecksumFormat.BSD):
        parsed = parse_checksums(encode(manifest, fmt), source="x", algorithm=Algorithm.SHA256)
        assert parsed.manifest.files == manifest.files


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(st.dictionaries(_PATH, st.sampled_from([A, B]), min_size=1, max_size=6))
def test_bagit_round_trip(files: dict[str, str]) -> None:
    manifest = manifest_of(Algorithm.SHA256, files)
    parsed = parse_bagit(encode_bagit(manifest), source="m", root="data")
    assert parsed.manifest.files == manifest.files


# -- what a format cannot express -------------------------------------------------------------


def test_b3sum_cannot_carry_names_that_are_not_utf8() -> None:
    manifest = manifest_of(Algorithm.BLAKE3, {os.fsdecode(b"caf\xe9"): A, "ok": B})
    with pytest.raises(ManifestError, match=r"^1 name\(s\) cannot be written for b3sum.*caf\\xe9"):
        encode_sums(manifest)
    assert (
        encode_bsd(manifest)
        == b"BLAKE3 (caf\xe9) = " + A.encode() + b"\nBLAKE3 (ok) = " + B.encode() + b"\n"
    )


def test_bagit_refuses_blake3_and_names_that_are_not_utf8() -> None:
    with pytest.raises(ManifestError, match="BagIt has no blake3 manifests"):
        encode_bagit(manifest_of(Algorithm.BLAKE3, {"a": A}))
    with pytest.raises(ManifestError, match=r"not valid UTF-8 .*: x\\xff"):
        encode_bagit(manifest_of(Algorithm.SHA256, {os.fsdecode(b"x\xff"): A}))


def test_sha256_sums_keep_raw_bytes_like_sha256sum() -> None:
    manifest = manifest_of(Algorithm.SHA256, {os.fsdecode(b"caf\xe9"): A})
    assert encode_sums(manifest) == A.encode() + b"  caf\xe9\n"


# -- reading: accepted variants ---------------------------------------------------------------


def parse(
    text: bytes, algorithm: Algorithm | None = Algorithm.SHA256, **kwargs: object
) -> dict[str, str]:
    parsed = parse_checksums(text, source="x", algorithm=algorithm, **kwargs)  # type: ignore[arg-type]
    assert parsed.malformed == ()
    return {path: entry.digest for path, entry in parsed.manifest.files.items()}


def test_what_sha256sum_accepts_from_other_writers() -> None:
    text = (
        b"# a comment\n\n"
        + A.upper().encode()
        + b" *binary\n"
        + A.encode()
        + b"  ./dot/./slash//name\n"
        + B.encode()
        + b"  no final newline"
    )
    assert parse(text) == {"binary": A, "dot/slash/name": A, "no final newline": B}


def test_a_trailing_carriage_return_is_a_dos_line_ending_for_sha256sum_not_for_b3sum() -> None:
    line = A.encode() + b"  name\r\n"
    assert parse(line, Algorithm.SHA256) == {"name": A}
    assert parse(line, Algorithm.BLAKE3) == {"name\r": A}
    assert parse(b"SHA256 (name) = " + A.encode() + b"\r\n") == {"name": A}


def test_escapes_apply_only_to_lines_that_start_with_a_backslash() -> None:
    escaped = b"\\" + A.encode() + b"  a\\\\b\\nc\\rd\n"
    literal = A.encode() + b"  a\\nb\n"
    assert parse(escaped) == {"a\\b\nc\rd": A}
    assert parse(literal) == {"a\\nb": A}
    assert parse(b"\\SHA256 (x\\ny) = " + A.encode() + b"\n") == {"x\ny": A}


def test_bsd_name_may_contain_the_separator() -> None:
    assert parse(b"SHA256 (a) = b) = " + A.encode() + b"\n") == {"a) = b": A}


def test_sums_and_bsd_lines_may_mix_unless_a_format_is_given() -> None:
    text = A.encode() + b"  one\nSHA256 (two) = " + B.encode() + b"\n"
    parsed = parse_checksums(text, source="x")
    assert parsed.manifest.algorithm is Algorithm.SHA256  # from the tag
    assert parsed.formats == {ChecksumFormat.SUMS, ChecksumFormat.BSD}
    only_sums = parse_checksums(
        text, source="x", algorithm=Algorithm.SHA256, only=ChecksumFormat.SUMS
    )
    assert only_sums.malformed == (
        MalformedLine(2, "a BSD-tagged line, but --format sums was given"),
    )
    only_bsd = parse_checksums(text, source="x", only=ChecksumFormat.BSD)
    assert only_bsd.malformed == (MalformedLine(1, "not a BSD-tagged line 'ALGO (path) = hex'"),)


# -- reading: malformed lines -----------------------------------------------------------------

MALFORMED = [
    (b"hello world", "not a checksum line: expected '<hex digest>  <path>' or 'ALGO (path) = hex'"),
    (A.encode() + b" one-space", "expected two spaces (or ' *') between the digest and the path"),
    (A.encode() + b"  ", "no path after the digest"),
    (
        b"d41d8cd98f00b204e9800998ecf8427e  md5",
        "a 32-hex-digit digest (MD5?): hashpar checks SHA-256 and BLAKE3 (64 hex digits) only",
    ),
    (
        b"\\" + A.encode() + b"  a\\tb",
        "invalid escape in path (only \\\\, \\n and \\r are defined)",
    ),
    (
        b"\\" + A.encode() + b"  trailing\\",
        "invalid escape in path (only \\\\, \\n and \\r are defined)",
    ),
    (A.encode() + b"  /etc/passwd", "absolute path refused: /etc/passwd"),
    (A.encode() + b"  a/../../b", "'..' path refused: a/../../b"),
    (A.encode() + b"  dir/", "names a directory, not a file: dir/"),
    (A.encode() + b"  C:/x", "unsafe path refused: drive-letter form: C:/x"),
    (
        b"MD5 (a) = d41d8cd98f00b204e9800998ecf8427e",
        "unsupported algorithm tag 'MD5' (SHA256 and BLAKE3 are)",
    ),
    (b"BLAKE3 (a) = " + A.encode(), "a BLAKE3 line in a sha256 check"),
    (b"\xef\xbb\xbf" + A.encode() + b"  bom", "starts with a UTF-8 byte-order mark"),
    (b"   ", "not a checksum line: expected '<hex digest>  <path>' or 'ALGO (path) = hex'"),
]


@pytest.mark.parametrize(("line", "message"), MALFORMED)
def test_malformed_lines_are_reported_with_their_numbers(line: bytes, message: str) -> None:
    text = b"# header\n" + A.encode() + b"  good\n\n" + line + b"\n" + B.encode() + b"  also good\n"
    parsed = parse_checksums(text, source="x", algorithm=Algorithm.SHA256)
    assert parsed.malformed == (MalformedLine(4, message),)
    assert set(parsed.manifest.files) == {"good", "also good"}


def test_a_path_listed_twice_is_malformed_even_with_the_same_digest() -> None:
    """With another digest the file cannot match both lines: that line is conflicting."""
    text = A.encode() + b"  x\n" + A.encode() + b"  ./x\n" + B.encode() + b"  x\n"
    parsed = parse_checksums(text, source="x", algorithm=Algorithm.SHA256)
    assert parsed.malformed == (
        MalformedLine(2, "x is listed again (first on line 1)"),
        MalformedLine(
            3,
            "x is listed again with another digest (first on line 1, whose digest is checked)",
            LineKind.CONFLICTING,
        ),
    )
    assert (parsed.problems.malformed, parsed.problems.conflicting) == (1, 1)
    assert parsed.manifest.files["x"].digest == A


@pytest.mark.parametrize(
    ("text", "detail", "lines"),
    [
        (b"", "(only blank lines and comments)", []),
        (b"\n# only a comment\n", "(only blank lines and comments)", []),
        (b"\n# ../x\n" + A.encode() + b"  ../x\n", "(1 malformed)", [3]),
    ],
)
def test_no_valid_line_at_all_is_an_error(text: bytes, detail: str, lines: list[int]) -> None:
    with pytest.raises(NoChecksumLines) as info:
        parse_checksums(text, source="x", algorithm=Algorithm.SHA256)
    assert str(info.value) == f"x: no properly formatted checksum lines found {detail}"
    assert [m.line for m in info.value.malformed] == lines


def test_md5sums_say_why_they_cannot_be_checked_rather_than_asking_for_algo() -> None:
    with pytest.raises(NoChecksumLines) as info:
        parse_checksums(b"d41d8cd98f00b204e9800998ecf8427e  a\n", source="MD5SUMS")
    assert "32-hex-digit digest (MD5?)" in info.value.malformed[0].message


# -- algorithm inference ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("SHA256SUMS", Algorithm.SHA256),
        ("dir/release.sha256", Algorithm.SHA256),
        ("checksums.sha256sum.txt", Algorithm.SHA256),
        ("manifest-sha256.txt", Algorithm.SHA256),
        ("B3SUMS", Algorithm.BLAKE3),
        ("photos.b3", Algorithm.BLAKE3),
        ("x.blake3", Algorithm.BLAKE3),
        ("sums.txt", None),
        ("sha256-and-b3.txt", None),
        ("sha2567", None),
        ("-", None),
    ],
)
def test_algorithm_from_name(name: str, expected: Algorithm | None) -> None:
    assert algorithm_from_name(name) is expected


def test_unknown_algorithm_asks_for_algo() -> None:
    with pytest.raises(
        UsageError, match=r"^sums.txt: cannot tell SHA-256 from BLAKE3 .* give --algo"
    ):
        parse_checksums(A.encode() + b"  x\n", source="sums.txt")


def test_given_algorithm_wins_over_the_file_name() -> None:
    parsed = parse_checksums(A.encode() + b"  x\n", source="SHA256SUMS", algorithm=Algorithm.BLAKE3)
    assert parsed.manifest.algorithm is Algorithm.BLAKE3


def test_mixed_tags_need_algo() -> None:
    text = b"SHA256 (a) = " + A.encode() + b"\nBLAKE3 (b) = " + B.encode() + b"\n"
    with pytest.raises(UsageError, match=r"mixes sha256 \(line 1\) and blake3 \(line 2\)"):
        parse_checksums(text, source="x")
    parsed = parse_checksums(text, source="x", algorithm=Algorithm.BLAKE3)
    assert set(parsed.manifest.files) == {"b"}
    assert parsed.malformed == (MalformedLine(1, "a SHA256 line in a blake3 check"),)


# -- BagIt ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("a%25b", "a%b"),
        ("a%0Ab%0ac", "a\nb\nc"),
        ("%0D%0d", "\r\r"),
        ("50%41", "50%41"),
        ("%", "%"),
        ("%2525", "%25"),
    ],
)
def test_bagit_percent_decoding(text: str, path: str) -> None:
    assert decode_path(text) == path


def test_bagit_lines_may_end_with_lf_cr_or_crlf() -> None:
    text = A.encode() + b"  data/a\r\n" + B.encode() + b" \tdata/b c\r" + A.encode() + b"  data/d"
    parsed = parse_bagit(text, source="m", root="data")
    assert {p: e.digest for p, e in parsed.manifest.files.items()} == {"a": A, "b c": B, "d": A}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (A.encode() + b"  other/x", "not a payload path (outside data/): other/x"),
        (A.encode() + b"  data/../x", "'..' path refused: data/../x"),
        (A.encode() + b"  data/\xff", "not valid UTF-8 (BagIt manifests are UTF-8)"),
        (b"x  data/a", "not a manifest line: expected '<hex digest>  data/<path>'"),
        (
            b"\xef\xbb\xbf" + A.encode() + b"  data/a",
            "starts with a UTF-8 byte-order mark (RFC 8493 forbids it)",
        ),
        (A.encode() + b"  data/ok", "ok is listed again (first on line 1)"),
    ],
)
def test_bagit_malformed_lines(line: bytes, message: str) -> None:
    parsed = parse_bagit(A.encode() + b"  data/ok\n" + line + b"\n", source="m", root="data")
    assert parsed.malformed == (MalformedLine(2, message),)


def test_bag_info_has_oxum_and_keeps_other_fields() -> None:
    manifest = Manifest(
        Algorithm.SHA256,
        "data",
        "",
        "",
        Snapshot(files={"a": FileEntry(3, A, None), "b/c": FileEntry(10, B, None)}),
    )
    existing = (
        b"Source-Organization: Example\nExternal-Description: long\n  and folded\n"
        b"Payload-Oxum: 1.1\nBagging-Date: 2000-01-01\n"
    )
    info = bag_info(manifest, existing, date(2026, 11, 26), "hashpar 9")
    assert info == (
        b"Source-Organization: Example\nExternal-Description: long\n  and folded\n"
        b"Bag-Software-Agent: hashpar 9\nBagging-Date: 2026-11-26\nPayload-Oxum: 13.2\n"
    )


def test_bag_info_needs_every_size() -> None:
    with pytest.raises(ManifestError, match="Payload-Oxum needs every file's size"):
        bag_info(manifest_of(Algorithm.SHA256, {"a": A}), None, date(2026, 1, 1), "x")


def test_tag_manifest_lists_each_tag_file() -> None:
    x, empty = hashlib.sha256(b"x").hexdigest(), hashlib.sha256(b"").hexdigest()
    expected = f"{x}  a.txt\n{empty}  b.txt\n"
    assert tag_manifest({"b.txt": b"", "a.txt": b"x"}) == expected.encode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"Tag-File-Character-Encoding: UTF-8\n", "no BagIt-Version"),
        (
            b"BagIt-Version: 1.0\nTag-File-Character-Encoding: ISO-8859-1\n",
            "hashpar reads UTF-8 bags only",
        ),
        (b"BagIt-Version 1.0\n", "not a 'Label: value' line"),
    ],
)
def test_bagit_txt_is_checked(text: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        check_bagit_txt(text, "bagit.txt")
    check_bagit_txt(b"BagIt-Version: 0.97\nTag-File-Character-Encoding: UTF-8\n", "bagit.txt")
