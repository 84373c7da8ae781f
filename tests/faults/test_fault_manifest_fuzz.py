"""Manifest fuzzing: truncated and mutated manifests are unusable input, never a success.

The exhaustive sweeps (every byte offset of a manifest, every field with every wrong type)
run against the library decoder, :func:`hashpar.decode_manifest`; hypothesis adds random
manifests, offsets and mutations. Every case must raise ManifestError with a one-line
message: never another exception, never a decoded manifest.

One deliberate exception, written down in docs/reliability.md: a prefix that lacks only the
final newline is the complete document (JSON ignores trailing whitespace), so it decodes.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from faultkit import command, hashpar_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashpar import ManifestError, decode_manifest, encode_manifest
from hashpar.models import (
    Algorithm,
    FileEntry,
    Manifest,
    Problem,
    ProblemKind,
    Snapshot,
    SpecialKind,
)
from hashpar.names import unsafe_reason

FUZZ = settings(
    max_examples=int(os.environ.get("HASHPAR_FUZZ_EXAMPLES", "300")),
    deadline=None,  # a shared, loaded machine: no per-example time limit
    suppress_health_check=[HealthCheck.too_slow],
)


def _manifest(files: dict[str, FileEntry] | None = None) -> Manifest:
    """A manifest using every section and field, with hostile (but storable) names."""
    return Manifest(
        algorithm=Algorithm.SHA256,
        root="/data/tree",
        created="2026-11-26T01:30:00Z",
        generator="hashpar 0.1.0",
        excludes=("*.tmp", "cache/"),
        follow_symlinks=True,
        snapshot=Snapshot(
            files=files
            or {
                "a.txt": FileEntry(5, "0" * 64, 1_700_000_000_000_000_000),
                "dir/new\nline": FileEntry(0, "af1349b9" * 8, None),
                "dir/\udcff-raw": FileEntry(2**63 - 1, "f" * 64, -1),
                "é/-x\\y": FileEntry(None, "0123456789abcdef" * 4, 0),
            },
            symlinks={"link": "../outside", "raw\udcfe": "t\udcfe"},
            skipped={"fifo": SpecialKind.FIFO},
            errors={"locked": Problem(ProblemKind.UNREADABLE, "Permission denied")},
        ),
    )


VALID = encode_manifest(_manifest())


def _assert_refused(data: bytes) -> str:
    """``data`` must raise ManifestError with a one-line message; return the message."""
    with pytest.raises(ManifestError) as info:
        decode_manifest(data)
    message = str(info.value)
    assert message and "\n" not in message and "\r" not in message
    return message


def test_the_valid_manifest_decodes() -> None:
    assert decode_manifest(VALID) == _manifest()


def test_truncated_at_every_byte_offset() -> None:
    complete = VALID.rstrip()
    for offset in range(len(VALID)):
        prefix = VALID[:offset]
        if prefix == complete:  # only the final newline is missing: the whole document
            assert decode_manifest(prefix) == _manifest()
            continue
        _assert_refused(prefix)


# -- random manifests, truncated at random offsets --------------------------------------------

_SEGMENT = st.text(
    alphabet=st.sampled_from([*'abcXYZ019 .-_\\\n\t"é😀', "\udcff", "\udc80"]),
    min_size=1,
    max_size=8,
)
_PATH = (
    st.lists(_SEGMENT, min_size=1, max_size=3)
    .map("/".join)
    .filter(lambda p: unsafe_reason(p) is None)
)
_ENTRY = st.builds(
    FileEntry,
    size=st.none() | st.integers(0, 2**63 - 1),
    digest=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    mtime_ns=st.none() | st.integers(-(2**63) + 1, 2**63 - 1),
)


@FUZZ
@given(files=st.dictionaries(_PATH, _ENTRY, min_size=1, max_size=6), data=st.data())
def test_random_manifest_truncated_anywhere(files: dict[str, FileEntry], data: Any) -> None:
    encoded = encode_manifest(_manifest(files))
    assert decode_manifest(encoded).files == files
    offset = data.draw(st.integers(0, len(encoded.rstrip()) - 1), label="offset")
    _assert_refused(encoded[:offset])


# -- mutations: wrong types and wrong values, everywhere --------------------------------------

# The JSON types each location accepts ("int" never includes true/false).
_TOP_TYPES = {
    "version": {"int"},
    "generator": {"str"},
    "algorithm": {"str"},
    "root": {"str"},
    "created": {"str"},
    "follow_symlinks": {"bool"},
    "excludes": {"list"},
    "files": {"dict"},
    "symlinks": {"dict"},
    "skipped": {"dict"},
    "errors": {"dict"},
}
_ENTRY_TYPES = {
    "files": {"size": {"int", "null"}, "mtime_ns": {"int", "null"}, "digest": {"str"}},
    "symlinks": {"target": {"str"}},
    "skipped": {"kind": {"str"}},
    "errors": {"kind": {"str"}, "message": {"str"}},
}
_SAMPLES: list[Any] = [None, True, False, 0, 1, -1, 1.5, 1e300, 2**64, "", "x", [], ["x"], {}]
_SAMPLES += [{"x": 1}, {"digest": "0" * 64}]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "dict"}[type(value)]


def _locations(doc: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], set[str]]]:
    """Every place in ``doc`` with the set of JSON types it accepts."""
    for key, types in _TOP_TYPES.items():
        yield (key,), types
    yield ("excludes", "0"), {"str"}
    for section, fields in _ENTRY_TYPES.items():
        for name, entry in doc[section].items():
            yield (section, name), {"dict"}
            for field in entry:
                yield (section, name, field), fields[field]


def _replace(doc: dict[str, Any], where: tuple[str, ...], value: Any) -> bytes:
    mutated = copy.deepcopy(doc)
    parent: Any = mutated
    for step in where[:-1]:
        parent = parent[int(step)] if isinstance(parent, list) else parent[step]
    if isinstance(parent, list):
        parent[int(where[-1])] = value
    else:
        parent[where[-1]] = value
    return json.dumps(mutated, ensure_ascii=False).encode("utf-8", "surrogatepass")


DOC = json.loads(VALID)
LOCATIONS = list(_locations(DOC))


def test_every_location_with_every_wrong_type() -> None:
    count = 0
    for where, types in LOCATIONS:
        for value in _SAMPLES:
            if _json_type(value) not in types:
                _assert_refused(_replace(DOC, where, value))
                count += 1
    assert count > 300


BAD_VALUES: list[tuple[tuple[str, ...], Any]] = [
    (("version",), 0),
    (("version",), 2),
    (("algorithm",), "md5"),
    (("algorithm",), "BLAKE3"),
    (("root",), ""),
    (("root",), "a\0b"),
    (("files", "a.txt", "digest"), "0" * 63),
    (("files", "a.txt", "digest"), "0" * 65),
    (("files", "a.txt", "digest"), "A" * 64),
    (("files", "a.txt", "digest"), "g" * 64),
    (("files", "a.txt", "digest"), " " + "0" * 63),
    (("files", "a.txt", "size"), -1),
    (("files", "a.txt", "size"), 2**63),
    (("files", "a.txt", "mtime_ns"), 2**63),
    (("files", "a.txt", "mtime_ns"), -(2**63)),
    (("files", "a.txt", "extra"), 1),
    (("skipped", "fifo", "kind"), "pipe"),
    (("errors", "locked", "kind"), "oops"),
    (("symlinks", "link", "extra"), "x"),
    (("unknown_field",), 1),
]


@pytest.mark.parametrize(("where", "value"), BAD_VALUES, ids=lambda v: repr(v)[:30])
def test_wrong_values(where: tuple[str, ...], value: Any) -> None:
    _assert_refused(_replace(DOC, where, value))


def _rename_key(section: str, old: str, new: str) -> bytes:
    mutated = copy.deepcopy(DOC)
    mutated[section] = {new if k == old else k: v for k, v in mutated[section].items()}
    return json.dumps(mutated).encode()


UNSAFE_KEYS = ["", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", "a\0b", "C:x", "\\x"]
UNSAFE_KEYS += ["a\\..\\b", "\0not-canonical", "\0a\\x4"]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
@pytest.mark.parametrize("section", ["files", "symlinks", "skipped", "errors"])
def test_unsafe_or_non_canonical_keys(section: str, key: str) -> None:
    old = next(iter(DOC[section]))
    _assert_refused(_rename_key(section, old, key))


RAW_MUTATIONS = {
    "bom": b"\xef\xbb\xbf" + VALID,
    "trailing data": VALID + b"{}",
    "two documents": VALID + VALID,
    "NaN size": VALID.replace(b'"size": 5', b'"size": NaN'),
    "duplicate key": VALID.replace(
        b'  "files": {\n', b'  "files": {\n    "a.txt": {"digest": "%s"},\n' % (b"1" * 64)
    ),
    "duplicate field": VALID.replace(b'"size": 5,', b'"size": 5, "size": 5,'),
    "deep nesting": VALID.replace(b'"excludes": [', b'"excludes": ' + b"[" * 100_000, 1),
    "huge number": VALID.replace(b'"size": 5', b'"size": ' + b"9" * 5000),
    "not utf-8": VALID.replace(b"a.txt", b"a\xff.txt"),
    "utf-16": VALID.decode("utf-8", "surrogatepass").encode("utf-16", "surrogatepass"),
    "empty": b"",
    "whitespace": b" \n",
    "null": b"null",
    "list": b"[]",
    "empty object": b"{}",
}


@pytest.mark.parametrize("name", sorted(RAW_MUTATIONS))
def test_raw_mutations(name: str) -> None:
    assert RAW_MUTATIONS[name] != VALID
    _assert_refused(RAW_MUTATIONS[name])


@FUZZ
@given(
    where=st.sampled_from(LOCATIONS),
    value=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=70),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    ),
)
def test_random_wrong_type_anywhere(where: tuple[tuple[str, ...], set[str]], value: Any) -> None:
    location, types = where
    kind = _json_type(value)
    if kind in types or (kind == "float" and "int" in types and math.isfinite(value)):
        return  # a value of an accepted type; json may also write 2.0 as a float
    _assert_refused(_replace(DOC, location, value))


@FUZZ
@given(data=st.data())
def test_random_byte_flips(data: Any) -> None:
    """Flip one byte anywhere: refused, or (if it stays valid) a genuinely different manifest.

    A flip inside a digest, a number or a string can leave a well-formed manifest that says
    something else; the decoder cannot know the original. What must never happen is a crash,
    a multi-line message, or a manifest decoding to the same value from different bytes in
    a way that hides the change.
    """
    offset = data.draw(st.integers(0, len(VALID) - 1), label="offset")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != VALID[offset]), label="byte")
    mutated = VALID[:offset] + bytes([byte]) + VALID[offset + 1 :]
    try:
        decoded = decode_manifest(mutated)
    except ManifestError as exc:
        assert "\n" not in str(exc)
        return
    whitespace = b" \t\r\n"
    assert decoded != _manifest() or (VALID[offset] in whitespace and byte in whitespace)


# -- the same through the real command: hashpar verify reading the manifest on stdin ---------

_STEP = max(1, len(VALID) // 16)
CLI_CASES = {f"truncated at {n}": VALID[:n] for n in range(0, len(VALID) - 1, _STEP)}
CLI_CASES[f"truncated at {len(VALID) - 2}"] = VALID[:-2]
CLI_CASES.update({f"raw {name}": data for name, data in RAW_MUTATIONS.items()})
CLI_CASES.update(
    {
        f"{'.'.join(where)} = {value!r}"[:60]: _replace(DOC, where, value)
        for where, value in [*BAD_VALUES[::3], (("files", "a.txt"), []), (("version",), True)]
    }
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_verify_refuses_broken_manifest(name: str) -> None:
    result = subprocess.run(
        command("verify", "-"),
        input=CLI_CASES[name],
        env=hashpar_env(),
        capture_output=True,
        timeout=50,
        check=False,
    )
    assert (result.returncode, result.stdout) == (2, b"")
    lines = result.stderr.decode(errors="replace").splitlines(keepends=True)
    assert lines[-1].startswith("hashpar: error: standard input: ")
    assert all(line.startswith("hashpar: ") and line.endswith("\n") for line in lines)
    if CLI_CASES[name].lstrip(b"\xef\xbb\xbf").startswith(b"{"):  # recognisably a manifest
        assert len(lines) == 1
    else:  # read as a checksum list: each malformed line is named, then the verdict
        assert len(lines) <= 2
