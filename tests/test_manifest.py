"""Manifest v1 encoding: canonical, deterministic, lossless; decoding: strict."""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Mapping
from dataclasses import replace
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashpar import (
    Algorithm,
    FileEntry,
    FileTable,
    KeyOrdered,
    Manifest,
    ManifestError,
    Problem,
    ProblemKind,
    Snapshot,
    SpecialKind,
    decode_manifest,
    encode_manifest,
)
from hashpar.kinds import UNKNOWN
from hashpar.names import unsafe_reason

component = st.binary(min_size=1, max_size=8).filter(
    lambda b: b"/" not in b and b"\0" not in b and b not in (b".", b"..")
)
paths = (
    st.lists(component, min_size=1, max_size=3)
    .map(lambda parts: os.fsdecode(b"/".join(parts)))
    .filter(lambda p: unsafe_reason(p) is None)
)
digests = st.binary(min_size=32, max_size=32).map(bytes.hex)
entries = st.builds(
    FileEntry,
    size=st.none() | st.integers(0, 2**63 - 1),
    digest=digests,
    mtime_ns=st.none() | st.integers(-(2**63) + 1, 2**63 - 1),
)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    names = draw(st.lists(paths, unique=True, max_size=12))
    sections: list[dict[str, object]] = [{}, {}, {}, {}]
    for name in names:
        sections[draw(st.integers(0, 3))][name] = None
    return Manifest(
        algorithm=draw(st.sampled_from(Algorithm)),
        root=draw(  # os.fsdecode of bytes: a root that is not UTF-8 (surrogate escapes)
            (st.text(min_size=1) | st.binary(min_size=1).map(os.fsdecode)).filter(
                lambda r: "\0" not in r
            )
        ),
        created="2026-11-26T00:00:00Z",
        generator="hashpar test",
        excludes=tuple(
            draw(st.lists(st.sampled_from(["*.tmp", "cache/", "!keep", os.fsdecode(b"caf\xe9*")])))
        ),
        follow_symlinks=draw(st.booleans()),
        snapshot=Snapshot(
            files={n: draw(entries) for n in sorted(sections[0])},
            symlinks={n: draw(paths) for n in sorted(sections[1])},
            skipped={n: draw(st.sampled_from(SpecialKind)) for n in sorted(sections[2])},
            errors={
                n: Problem(draw(st.sampled_from(ProblemKind)), draw(st.text()))
                for n in sorted(sections[3])
            },
        ),
    )


@settings(max_examples=200)
@given(manifests())
def test_decode_inverts_encode(manifest: Manifest) -> None:
    data = encode_manifest(manifest)
    data.decode("utf-8")  # valid UTF-8 ...
    json.loads(data)  # ... and valid JSON for any other reader
    assert decode_manifest(data) == manifest


@given(manifests())
def test_encoding_is_canonical(manifest: Manifest) -> None:
    data = encode_manifest(manifest)
    assert encode_manifest(decode_manifest(data)) == data


def sample() -> Manifest:
    return Manifest(
        algorithm=Algorithm.SHA256,
        root="photos",
        created="2026-11-26T01:30:00Z",
        generator="hashpar 0.1.0",
        snapshot=Snapshot(
            files={
                "a.txt": FileEntry(3, "ab" * 32, 7),
                os.fsdecode(b"b\xff"): FileEntry(0, "cd" * 32, 8),
            },
            symlinks={"link": "a.txt"},
            skipped={"pipe": SpecialKind.FIFO},
            errors={"locked": Problem(ProblemKind.UNREADABLE, "Permission denied")},
        ),
    )


GOLDEN = (
    b'{\n  "version": 1,\n  "generator": "hashpar 0.1.0",\n  "algorithm": "sha256",\n'
    b'  "root": "photos",\n  "created": "2026-11-26T01:30:00Z",\n  "follow_symlinks": false,\n'
    b'  "excludes": [],\n  "files": {\n'
    b'    "\\u0000b\\\\xff": {"size": 0, "mtime_ns": 8, "digest": "' + b"cd" * 32 + b'"},\n'
    b'    "a.txt": {"size": 3, "mtime_ns": 7, "digest": "' + b"ab" * 32 + b'"}\n  },\n'
    b'  "symlinks": {\n    "link": {"target": "a.txt"}\n  },\n'
    b'  "skipped": {\n    "pipe": {"kind": "fifo"}\n  },\n'
    b'  "errors": {\n    "locked": {"kind": "unreadable", "message": "Permission denied"}\n  }\n}\n'
)


def test_golden_encoding() -> None:
    assert encode_manifest(sample()) == GOLDEN


def test_duplicate_keys_are_refused_in_any_layout() -> None:
    entry = '{"size": 1, "digest": "' + "ab" * 32 + '"}'
    for layout in ("{{{0}, {0}}}", "{{ {0} ,\n {0} }}"):
        files = layout.format(f'"a": {entry}')
        doc = f'{{"version": 1, "algorithm": "blake3", "root": "r", "files": {files}}}'
        with pytest.raises(ManifestError, match='duplicate key "a"'):
            decode_manifest(doc.encode())


def test_a_hand_written_minimal_manifest_is_accepted() -> None:
    doc = {"version": 1, "algorithm": "blake3", "root": "r", "files": {"x": {"digest": "0" * 64}}}
    manifest = decode_manifest(json.dumps(doc, indent=4).encode())
    assert manifest.files == {"x": FileEntry(None, "0" * 64, None)}


@given(manifests(), st.randoms())
def test_encoding_does_not_depend_on_mapping_order(manifest: Manifest, rnd: Random) -> None:
    def shuffled(mapping: Mapping[str, object]) -> dict[str, object]:
        items = list(mapping.items())
        rnd.shuffle(items)
        return dict(items)

    snap = manifest.snapshot
    scrambled = Snapshot(
        *(shuffled(m) for m in (snap.files, snap.symlinks, snap.skipped, snap.errors))
    )  # type: ignore[arg-type]
    assert encode_manifest(replace(manifest, snapshot=scrambled)) == encode_manifest(manifest)


_SEGMENT = st.text(alphabet='ab"\\\n\x01é/', min_size=1, max_size=4).filter(
    lambda s: unsafe_reason(s) is None
)


@settings(max_examples=200, deadline=None)
@given(
    files=st.dictionaries(
        st.one_of(_SEGMENT, st.just("a\udcff")),  # "a\udcff": a name that is not UTF-8
        st.tuples(
            st.one_of(st.none(), st.integers(0, 2**40)),
            st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
            st.one_of(st.none(), st.integers(-(2**62), 2**62)),
        ),
        max_size=8,
    ),
    form=st.sampled_from(["dict", "ordered", "table"]),
    chunk=st.integers(1, 3),
)
def test_the_fast_files_writer_writes_what_the_general_one_does(
    files: dict[str, tuple[int | None, str, int | None]], form: str, chunk: int
) -> None:
    """The files section has a fast path for chunks of common entries, one for a FileTable's
    columns, and a walk without key_for for all-ASCII sorted paths; the bytes are the same
    either way, whatever mix of chunks, orders and names."""
    import hashpar.manifest

    entries = {p: FileEntry(*e) for p, e in files.items()}
    mapping: Mapping[str, FileEntry] = entries
    if form == "ordered":
        mapping = KeyOrdered(entries)
    elif form == "table":
        mapping = FileTable(
            list(entries),
            b"".join(bytes.fromhex(e.digest) for e in entries.values()),
            array("q", [UNKNOWN if e.size is None else e.size for e in entries.values()]),
            array("q", [UNKNOWN if e.mtime_ns is None else e.mtime_ns for e in entries.values()]),
        )

    def manifest(files: Mapping[str, FileEntry]) -> Manifest:
        snapshot = Snapshot(files=files)
        return Manifest(Algorithm.BLAKE3, "/r", "c", "g", snapshot)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hashpar.manifest, "_CHUNK", chunk)
        fast = encode_manifest(manifest(mapping))
        patch.setattr(hashpar.manifest, "_plain_lines", lambda keys, values: None)
        patch.setattr(hashpar.manifest, "_ascii_in_order", lambda entries: False)
        general = encode_manifest(manifest(entries))
    assert fast == general
