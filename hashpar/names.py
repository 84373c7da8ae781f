"""File names as hostile data: how a relative path becomes a manifest key, and which are safe.

Inside hashpar a relative path is a ``str`` with '/' separators, decoded from the file system
with ``os.fsdecode`` (so undecodable bytes are lone surrogates U+DC80..U+DCFF, the
"surrogateescape" convention). That string can go straight back to ``os`` functions.

A manifest must be valid UTF-8 JSON, which cannot carry lone surrogates, so the *key* for a
path is:

* the path itself when its bytes are valid UTF-8 (the overwhelmingly common case: names with
  newline, tab, backslash, a leading dash or either Unicode normalisation form are stored
  exactly, byte for byte, and NFC/NFD twins stay two distinct keys);
* otherwise ``"\\0"`` followed by the path with every backslash doubled and every byte that is
  not part of valid UTF-8 written ``\\xNN`` (lowercase hex). For example the name
  ``b"caf\\xe9"`` becomes the key ``"\\u0000caf\\\\xe9"`` in the JSON text.

No real name contains NUL, so the two forms can never collide. Decoding accepts only the
canonical form (``key_for(path_for(key)) == key``), so two different keys can never name the
same file.
"""

from __future__ import annotations

import os
import re

__all__ = [
    "BYTES_MARKER",
    "SAFE_PLAIN_PATH",
    "display_name",
    "input_name",
    "key_for",
    "one_line",
    "path_for",
    "unsafe_reason",
    "utf8_text",
]

BYTES_MARKER = "\0"
"""First character of a key that stands for a path that is not valid UTF-8."""

_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2})")
_DRIVE = re.compile(r"^[A-Za-z]:")
# Safe for sure: no NUL, no backslash, no leading '/', no drive form, no '', '.' or '..'
# segment. Such a path is also its own key. Anything else gets the detailed checks below.
SAFE_PLAIN_PATH = re.compile(r"(?!/|[A-Za-z]:)(?:(?!\.\.?(?:/|$))[^/\0\\]+(?:/|$))+(?<!/)")


def key_for(path: str) -> str:
    """Return the manifest key for a relative path produced by ``os.fsdecode``."""
    if path.isascii():  # the common case, without encoding anything
        return path
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(path).replace(b"\\", b"\\\\")
        return BYTES_MARKER + raw.decode("utf-8", "backslashreplace")
    return path


def path_for(key: str) -> str:
    """Return the relative path a manifest key stands for; ValueError if not canonical."""
    if not key.startswith(BYTES_MARKER):
        return key
    body = key[1:]
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(body):
        out += body[pos : match.start()].encode("utf-8")
        token = match.group(1)
        out += b"\\" if token == "\\" else bytes([int(token[1:], 16)])
        pos = match.end()
    out += body[pos:].encode("utf-8")
    path = os.fsdecode(bytes(out))
    if key_for(path) != key:
        raise ValueError("not the canonical encoding of a non-UTF-8 name")
    return path


def unsafe_reason(path: str, *, windows: bool = True) -> str | None:
    """Why a relative path is unsafe or not canonical, or None when it is fine.

    A safe path is relative, '/'-separated, with no empty, '.' or '..' segment, no NUL, no
    leading '/' or '\\', no drive form (``C:``), and no '.' or '..' segment when split on
    backslashes either (so it stays harmless if a Windows tool ever reads the manifest).
    ``windows=False`` leaves out the rules kept only for Windows readers (a leading
    backslash, the drive form, backslash segments): what a name make lists as
    ``unsafe-name`` must still satisfy.
    """
    if SAFE_PLAIN_PATH.fullmatch(path):  # the common case, decided by one regex
        return None
    return _detailed_reason(path, windows)


def _detailed_reason(path: str, windows: bool = True) -> str | None:
    """The full checks behind :func:`unsafe_reason`, each naming its reason."""
    if not path:
        return "empty path"
    if "\0" in path:
        return "contains NUL"
    if path.startswith("/") or (windows and path.startswith("\\")):
        return "absolute path"
    if windows and _DRIVE.match(path):
        return "drive-letter form"
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            return "not canonical ('', '.' or '..' segment)"
        if windows and any(part in (".", "..") for part in segment.split("\\")):
            return "'.' or '..' between backslashes"
    return None


_NAMED_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def display_name(path: str) -> str:
    """A path made safe for human output: one line, no terminal control sequences.

    Backslash, newline, CR and tab are written as ``\\\\ \\n \\r \\t``; any other
    unprintable character as ``\\xNN`` / ``\\uNNNN``; a byte that is not valid UTF-8 as
    ``\\xNN``. So a file name can never forge a line or a colour in hashpar's output.
    """
    if path.isprintable() and "\\" not in path:
        return path
    return "".join("\\\\" if char == "\\" else _shown(char) for char in path)


def input_name(path: str) -> str:
    """How a message names an input given on the command line: ``-`` is standard input."""
    return "standard input" if path == "-" else path


def utf8_text(message: str) -> str:
    """A message as valid UTF-8, which JSON needs: a byte of a name that is not valid UTF-8
    (a lone surrogate from ``os.fsdecode``) becomes ``\\xNN``; anything else is kept.

    A message is for people, not parsed back: a backslash already in it is left as it is,
    so a stored ``\\xff`` may have been either (a path is written unambiguously, as its
    key: :func:`key_for`)."""
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        return message.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return message


def one_line(text: str) -> str:
    """A message made one line the way :func:`display_name` makes a path, backslashes left
    as they are (a message may quote a key as JSON, which has its own)."""
    if text.isprintable():
        return text
    return "".join(_shown(char) for char in text)


def _shown(char: str) -> str:
    if char.isprintable():
        return char
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, via surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
