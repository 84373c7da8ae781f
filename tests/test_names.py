"""Manifest keys for file names: lossless, collision-free, canonical; display escaping."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashpar.names import display_name, key_for, path_for, unsafe_reason

# A path component is any bytes but '/' and NUL; a path is components joined with '/'.
component = st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b)
raw_paths = st.lists(component, min_size=1, max_size=4).map(b"/".join)


@given(raw_paths)
def test_key_round_trips_every_byte_string(raw: bytes) -> None:
    path = os.fsdecode(raw)
    key = key_for(path)
    key.encode("utf-8")  # always valid UTF-8: no lone surrogates reach the JSON
    assert os.fsencode(path_for(key)) == raw


@given(raw_paths, raw_paths)
def test_different_names_never_share_a_key(a: bytes, b: bytes) -> None:
    if a != b:
        assert key_for(os.fsdecode(a)) != key_for(os.fsdecode(b))


@pytest.mark.parametrize(
    "name",
    [
        "plain.txt",
        "new\nline",
        "tab\there",
        "back\\slash",
        "-leading-dash",
        "caf\u00e9",
        "cafe\u0301",
    ],
)
def test_valid_utf8_names_are_stored_exactly(name: str) -> None:
    assert key_for(name) == name


def test_a_non_utf8_name_gets_the_marked_escape() -> None:
    assert key_for(os.fsdecode(b"caf\xe9\\x")) == "\0caf\\xe9\\\\x"


@pytest.mark.parametrize(
    "key",
    ["\0plain", "\0caf\\x41", "\0bad\\escape", "\0\\xZZ", "\0trailing\\"],
    ids=["valid-utf8-marked", "escaped-ascii", "stray-backslash", "bad-hex", "dangling"],
)
def test_non_canonical_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        path_for(key)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("a/b.txt", None),
        ("back\\slash", None),
        ("..foo/...", None),
        ("", "empty path"),
        ("/etc/passwd", "absolute path"),
        ("\\server\\share", "absolute path"),
        ("C:\\x", "drive-letter form"),
        ("c:/x", "drive-letter form"),
        ("a/../b", "not canonical ('', '.' or '..' segment)"),
        ("..", "not canonical ('', '.' or '..' segment)"),
        ("./a", "not canonical ('', '.' or '..' segment)"),
        ("a//b", "not canonical ('', '.' or '..' segment)"),
        ("a/", "not canonical ('', '.' or '..' segment)"),
        ("a\\..\\b", "'.' or '..' between backslashes"),
        ("a\0b", "contains NUL"),
    ],
)
def test_unsafe_reason(path: str, reason: str | None) -> None:
    assert unsafe_reason(path) == reason


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("plain", "plain"),
        ("new\nline", "new\\nline"),
        ("cr\rtab\t", "cr\\rtab\\t"),
        ("back\\slash", "back\\\\slash"),
        ("\x1b[31mred", "\\x1b[31mred"),
        (os.fsdecode(b"\xff"), "\\xff"),
        ("\u2028sep", "\\u2028sep"),
        ("caf\u00e9", "caf\u00e9"),
    ],
)
def test_display_name_cannot_forge_lines_or_escapes(path: str, shown: str) -> None:
    assert display_name(path) == shown


@given(st.text(st.sampled_from("ab./\\:\0C"), max_size=10) | st.text(max_size=10))
def test_the_fast_path_never_accepts_what_the_full_checks_refuse(path: str) -> None:
    from hashpar.names import SAFE_PLAIN_PATH, _detailed_reason

    if SAFE_PLAIN_PATH.fullmatch(path):
        assert _detailed_reason(path) is None
    assert unsafe_reason(path) == _detailed_reason(path)
