"""The decoder's whole-manifest shortcuts agree exactly with the entry-by-entry checks.

Each shortcut (duplicate keys by counting colons, all keys safe by one joined string) may say
"not sure" and fall back, but must never pass what the slow check refuses. Hypothesis writes
manifests in hostile layouts: keys and strings holding ``{ } : , "`` and backslashes, any
character written as a ``\\u`` escape (``\\u003a`` is a colon the raw bytes do not show),
random whitespace, optional fields absent, null or present, and duplicate keys at every level.
The oracle is the old exact check: a second parse with ``object_pairs_hook``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import hashpar.manifest
from hashpar import FileEntry, ManifestError, decode_manifest
from hashpar.manifest import (
    _DECODER,
    _file_entries,
    _plain_keys,
    _reject_duplicate_keys,
    _surely_no_duplicate_keys,
)
from hashpar.names import SAFE_PLAIN_PATH, path_for, unsafe_reason
from hashpar.scan import compile_patterns

TRICKY = 'ab{}[]:,"\\ \n\té/'
segment = st.text(TRICKY, min_size=1, max_size=6)
safe_keys = (
    st.lists(segment, min_size=1, max_size=3)
    .map("/".join)
    .filter(lambda key: unsafe_reason(key) is None)
)
texts = st.text(TRICKY + "\0\x1f", max_size=8)


def _valid_pattern(text: str) -> bool:
    try:
        compile_patterns((text,))
    except (ValueError, TypeError):
        return False
    return not text.startswith("\0")  # that one is an escaped form


patterns = texts.filter(_valid_pattern)  # the reader refuses a bad gitignore pattern
digests = st.binary(min_size=32, max_size=32).map(bytes.hex)


def _escape(char: str, draw: st.DrawFn) -> str:
    """One character as JSON text: raw when allowed, or (at random) a \\u escape."""
    must = char in '"\\' or ord(char) < 0x20
    if must or draw(st.integers(0, 3)) == 0:
        hex_digits = f"{ord(char):04x}"
        return "\\u" + (hex_digits.upper() if draw(st.booleans()) else hex_digits)
    return char


@st.composite
def json_string(draw: st.DrawFn, text: str) -> str:
    return '"' + "".join(_escape(char, draw) for char in text) + '"'


@st.composite
def json_object(draw: st.DrawFn, pairs: list[tuple[str, str]]) -> str:
    """An object with these (key, JSON value) pairs, in this order, with random spacing."""
    space = st.sampled_from(["", " ", "\n  ", "\t"])
    members = [
        draw(space) + draw(json_string(key)) + draw(space) + ":" + draw(space) + value
        for key, value in pairs
    ]
    return "{" + ",".join(members) + draw(space) + "}"


def _maybe_duplicate(draw: st.DrawFn, pairs: list[tuple[str, str]], extra: str) -> bool:
    """Perhaps repeat one of ``pairs``' keys (with the value ``extra``, or its own value)."""
    if not pairs or draw(st.integers(0, 5)) != 0:
        return False
    key, value = pairs[draw(st.integers(0, len(pairs) - 1))]
    pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(st.sampled_from([value, extra]))))
    return True


@st.composite
def entry(draw: st.DrawFn, section: str) -> tuple[str, bool]:
    if section == "files":
        pairs = [("digest", json.dumps(draw(digests)))]
        for name in ("size", "mtime_ns"):
            value = draw(st.sampled_from(["absent", "null", "int"]))
            if value != "absent":
                pairs.append((name, "null" if value == "null" else str(draw(st.integers(0, 9)))))
        pairs = draw(st.permutations(pairs))
        extra = json.dumps(draw(digests))
    elif section == "symlinks":
        target = draw(texts.filter(lambda t: not t.startswith("\0")))
        pairs, extra = [("target", draw(json_string(target)))], '"x:{"'
    elif section == "skipped":
        pairs, extra = [("kind", '"fifo"')], '"socket"'
    else:
        pairs = [("kind", '"unreadable"'), ("message", draw(json_string(draw(texts))))]
        extra = '"failed"'  # a valid kind and a valid message
    duplicated = _maybe_duplicate(draw, pairs, extra)
    return draw(json_object(pairs)), duplicated


@st.composite
def manifests(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(manifest bytes, whether some object repeats a key) for an otherwise valid manifest."""
    keys = draw(st.lists(safe_keys, unique=True, max_size=8))
    sections: dict[str, list[tuple[str, str]]] = {
        "files": [],
        "symlinks": [],
        "skipped": [],
        "errors": [],
    }
    duplicated = False
    for key in keys:
        section = draw(st.sampled_from(sorted(sections)))
        value, repeated = draw(entry(section))
        sections[section].append((key, value))
        duplicated |= repeated
    top = [
        ("version", "1"),
        ("algorithm", '"blake3"'),
        ("root", draw(json_string(draw(st.text(TRICKY, min_size=1, max_size=8))))),
        ("generator", draw(json_string(draw(texts)))),
        ("created", draw(json_string("2026-11-26T01:30:00Z"))),
        ("follow_symlinks", "false"),
        ("excludes", "[" + ",".join(draw(json_string(t)) for t in draw(st.lists(patterns))) + "]"),
    ]
    top = top[:3] + [pair for pair in top[3:] if draw(st.booleans())]  # some optional ones
    for name, pairs in sections.items():
        if name == "files" or pairs or draw(st.booleans()):
            duplicated |= _maybe_duplicate(draw, pairs, draw(entry(name))[0])
            top.append((name, draw(json_object(pairs))))
    top = draw(st.permutations(top))
    duplicated |= _maybe_duplicate(draw, top, "{}" if draw(st.booleans()) else '"x"')
    return draw(json_object(top)).encode(), duplicated


def _oracle_finds_duplicate(data: bytes) -> bool:
    try:
        _reject_duplicate_keys(data)
    except ManifestError:
        return True
    return False


@settings(max_examples=500, deadline=None)
@given(manifests())
def test_the_colon_count_never_misses_a_duplicate(case: tuple[bytes, bool]) -> None:
    data, duplicated = case
    try:
        doc = _DECODER.decode(data)
    except Exception:  # a repeated value of the wrong shape ("x" for a section)
        assert duplicated
        return
    assert _oracle_finds_duplicate(data) == duplicated
    plain, colons = _plain_keys(doc.files)
    assert colons == "".join(doc.files).count(":")
    _, fields = _file_entries(doc.files, plain)
    surely_none = _surely_no_duplicate_keys(data, doc, fields, colons)
    event(f"duplicate: {duplicated}, proved free of duplicates: {surely_none}")
    if surely_none:
        assert not duplicated
    elif not duplicated:  # not sure without a duplicate: only because of an escaped colon
        assert b"\\u003a" in data or b"\\u003A" in data
    if duplicated:
        with pytest.raises(ManifestError, match="duplicate key"):
            decode_manifest(data)
    else:
        decode_manifest(data)


@pytest.mark.parametrize(
    ("files", "duplicate"),
    [
        ('{"x/a:b": {"digest": "D"}, "x/a\\u003ab": {"digest": "D"}}', True),  # same key
        ('{"x/a\\u003Ab": {"digest": "D"}, "x/b\\u003ab": {"digest": "D"}}', False),
        ('{"a": {"digest": "D", "size": 1, "size": null}}', True),
        ('{"a": {"size": null, "digest": "D"}, "x/b:": {"digest": "D"}}', False),
        ('{"x/\\u007b": {"digest": "D"}, "x/{": {"digest": "D"}}', True),
        ('{"x/\\u007B": {"digest": "D"}, "x/}": {"digest": "D"}}', False),
    ],
)
def test_escaped_colons_and_null_fields(files: str, duplicate: bool) -> None:
    files = files.replace("D", "0" * 64)
    data = f'{{"version": 1, "algorithm": "blake3", "root": "r", "files": {files}}}'.encode()
    assert _oracle_finds_duplicate(data) == duplicate
    if duplicate:
        with pytest.raises(ManifestError, match="duplicate key"):
            decode_manifest(data)
    else:
        assert len(decode_manifest(data).files) == 2


KEY_CHARS = "a./\\:\0C\n"


@settings(max_examples=1000)
@given(st.lists(st.text(KEY_CHARS, max_size=6), max_size=5), st.integers(1, 3))
def test_plain_keys_passes_only_keys_that_are_their_own_safe_path(
    keys: list[str], chunk: int
) -> None:
    """Checked a chunk at a time: any chunk size gives the same answer and colon count."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hashpar.manifest, "_CHUNK", chunk)
        plain, colons = _plain_keys(keys)
    assert colons == "".join(keys).count(":")
    if plain:
        for key in keys:
            assert path_for(key) == key
            assert unsafe_reason(key) is None
    elif keys and all(SAFE_PLAIN_PATH.fullmatch(key) for key in keys):
        pytest.fail("the shortcut refused keys the regex accepts")


def test_a_digest_is_exactly_64_characters_a_trailing_newline_is_not_allowed() -> None:
    for digest in ("0" * 64 + "\n", "0" * 63 + "\n"):
        doc = {"version": 1, "algorithm": "blake3", "root": "r", "files": {"x": {"digest": digest}}}
        with pytest.raises(ManifestError, match=r'files\["x"\]: Expected `str` matching regex'):
            decode_manifest(json.dumps(doc).encode())


def test_absent_and_null_sizes_decode_to_none() -> None:
    digest = "ab" * 32
    entries: dict[str, Any] = {
        "absent": {"digest": digest},
        "null": {"digest": digest, "size": None, "mtime_ns": None},
        "given": {"digest": digest, "size": 0, "mtime_ns": -5},
    }
    doc = {"version": 1, "algorithm": "sha256", "root": "r", "files": entries}
    assert decode_manifest(json.dumps(doc).encode()).files == {
        "absent": FileEntry(None, digest, None),
        "null": FileEntry(None, digest, None),
        "given": FileEntry(0, digest, -5),
    }
