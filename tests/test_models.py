"""Value types: KeyOrdered reads a dict in sorted key order without copying it; FileEntry."""

from __future__ import annotations

import gc
import pickle

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashpar import FileEntry, KeyOrdered


@given(st.dictionaries(st.text(), st.integers()))
def test_key_ordered_is_the_same_mapping_in_sorted_order(data: dict[str, int]) -> None:
    view = KeyOrdered(dict(data))
    assert list(view) == sorted(data)
    assert list(view.items()) == sorted(data.items())
    assert list(view.values()) == [value for _, value in sorted(data.items())]
    assert len(view.values()) == len(data)
    assert view == data and len(view) == len(data)
    assert all(key in view and view[key] == value for key, value in data.items())
    assert "\0absent" not in view or "\0absent" in data


def test_file_entry_is_an_immutable_value_the_collector_never_walks() -> None:
    entry = FileEntry(3, "ab" * 32, 7)
    assert (entry.size, entry.digest, entry.mtime_ns) == (3, "ab" * 32, 7)
    assert entry == FileEntry(size=3, digest="ab" * 32, mtime_ns=7) != FileEntry(4, "ab" * 32, 7)
    assert hash(entry) == hash(FileEntry(3, "ab" * 32, 7))
    assert msgspec.structs.replace(entry, size=4) == FileEntry(4, "ab" * 32, 7)
    with pytest.raises(AttributeError):
        entry.size = 4  # type: ignore[misc]
    assert not gc.is_tracked(entry)  # a million of them never slow a collection down
    assert pickle.loads(pickle.dumps(entry)) == entry
