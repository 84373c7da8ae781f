"""Value types: KeyOrdered reads a dict in sorted key order without copying it; FileTable
holds files as columns in path order; FileEntry."""

from __future__ import annotations

import gc
import pickle
from array import array

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashpar import FileEntry, FileTable, KeyOrdered
from hashpar.kinds import DIGEST_BYTES, INT64_MAX, UNKNOWN


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


def _table(rows: dict[str, FileEntry]) -> FileTable:
    """A FileTable of ``rows`` given in their dict order (None as kinds.UNKNOWN)."""
    paths = list(rows)
    digests = b"".join(bytes.fromhex(entry.digest) for entry in rows.values())
    sizes = array("q", [UNKNOWN if e.size is None else e.size for e in rows.values()])
    mtimes = array("q", [UNKNOWN if e.mtime_ns is None else e.mtime_ns for e in rows.values()])
    return FileTable(paths, digests, sizes, mtimes)


_ENTRIES = st.builds(
    FileEntry,
    st.none() | st.integers(0, INT64_MAX),
    st.binary(min_size=DIGEST_BYTES, max_size=DIGEST_BYTES).map(bytes.hex),
    st.none() | st.integers(-INT64_MAX, INT64_MAX),
)


@given(st.dictionaries(st.text(), _ENTRIES, max_size=60))
def test_file_table_is_the_same_mapping_in_sorted_order(data: dict[str, FileEntry]) -> None:
    table = _table(data)
    assert list(table) == sorted(data)
    assert list(table.items()) == sorted(data.items())
    assert list(table.values()) == [entry for _, entry in sorted(data.items())]
    assert table == data and len(table) == len(data)
    assert all(path in table and table[path] == entry for path, entry in data.items())
    assert table.get("\0absent") is None and 3 not in table  # type: ignore[comparison-overlap]
    if data:
        paths, digests, sizes, mtimes = table.rows(0, len(table))
        assert paths == sorted(data) and len(digests) == DIGEST_BYTES * len(data)
        assert len(sizes) == len(mtimes) == len(data)
        assert list(table.entries(1, 3)) == list(table.values())[1:3]


def test_file_table_copies_runs_of_rows_into_path_order() -> None:
    # Three runs as a walk's results arrive: each sorted, interleaved with one another.
    paths = ["b/1", "b/2", "b/3", "a/1", "a/2", "c", "b/0", "a/3"]
    entries = {p: FileEntry(i, f"{i:02x}" * DIGEST_BYTES, -i) for i, p in enumerate(paths)}
    table = _table(entries)
    assert list(table.items()) == sorted(entries.items())
    assert table["b/0"] == FileEntry(6, "06" * DIGEST_BYTES, -6)


def test_a_file_table_refuses_columns_that_do_not_make_a_mapping() -> None:
    one = array("q", [1])
    with pytest.raises(ValueError, match="differ in length"):
        FileTable(["a"], b"\0" * (DIGEST_BYTES - 1), one, one)
    with pytest.raises(ValueError, match="differ in length"):
        FileTable(["a", "b"], b"\0" * DIGEST_BYTES * 2, one, one)
    with pytest.raises(ValueError, match="given twice"):
        FileTable(["a", "a"], b"\0" * DIGEST_BYTES * 2, one * 2, one * 2)
    with pytest.raises(ValueError, match="negative"):
        FileTable(["a"], b"\0" * DIGEST_BYTES, array("q", [-1]), one)
    # Found by review (session 8): keys it iterated but could not look up, unclear errors.
    with pytest.raises(TypeError, match="array"):
        FileTable(["a"], b"\0" * DIGEST_BYTES, array("l", [1]), one)
    with pytest.raises(TypeError, match="array"):
        FileTable(["a"], b"\0" * DIGEST_BYTES, [1], one)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="paths must be str"):
        FileTable([b"a"], b"\0" * DIGEST_BYTES, one, one)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="digests must be bytes"):
        FileTable(["a"], "0" * DIGEST_BYTES, one, one)  # type: ignore[arg-type]


def test_a_file_table_looks_up_and_slices_as_a_dict_and_a_list_would() -> None:
    table = FileTable(["a"], b"\0" * DIGEST_BYTES, array("q", [1]), array("q", [2]))
    with pytest.raises(TypeError, match="unhashable"):
        [] in table  # noqa: B015
    for start, stop in ((-1, 1), (0, -1)):  # found by review (session 8): they wrapped around
        with pytest.raises(ValueError, match="numbered from 0"):
            table.entries(start, stop)
        with pytest.raises(ValueError, match="numbered from 0"):
            table.rows(start, stop)
    assert list(table.entries(0, 5)) == [FileEntry(1, "00" * DIGEST_BYTES, 2)]
    assert table.rows(1, 5) == ([], b"", array("q"), array("q"))


def test_a_file_table_keeps_none_of_its_arguments() -> None:
    paths, digests, sizes = ["a"], bytearray(DIGEST_BYTES), array("q", [5])
    table = FileTable(paths, digests, sizes, array("q", [UNKNOWN]))
    paths[0], digests[0], sizes[0] = "z", 255, 6
    assert dict(table) == {"a": FileEntry(5, "00" * DIGEST_BYTES, None)}
    assert pickle.loads(pickle.dumps(table)) == table
