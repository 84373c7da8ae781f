"""The checksum formats people already have, both ways (the rules: docs/formats.md).

* GNU sums: ``sha256sum`` / ``b3sum`` output, ``<hex>  <path>``, with their escaping rules;
* BSD tags: ``SHA256 (<path>) = <hex>``, ``BLAKE3 (<path>) = <hex>``;
* BagIt (RFC 8493): ``manifest-sha256.txt`` with percent-encoded paths, and the tag files that
  turn a directory with a ``data/`` payload into a bag in place.

Encoders take a :class:`~hashpar.models.Manifest` and return the bytes the real tool would
write; parsers read line by line and return a :class:`ParsedChecksums` (a Manifest whose
sizes and mtimes are None, plus :class:`LineProblems`: the first :class:`MalformedLine` records with
their numbers and kinds, and counts of all). A name a format cannot express is a
ManifestError, never a line that names some other file; input that is no checksum file at
all is a :class:`NotAChecksumFile`.
"""

from __future__ import annotations

from hashpar._lazy import lazy_attributes as _lazy_attributes

TYPE_CHECKING = False  # not typing.TYPE_CHECKING, which costs an import (mypy knows the name)
if TYPE_CHECKING:
    from hashpar.formats.bagit import encode_bagit, parse_bagit
    from hashpar.formats.files import bag_tag_files, fill_sizes, load_checksums, read_bag
    from hashpar.formats.records import (
        ChecksumFormat,
        LineKind,
        LineProblems,
        MalformedLine,
        NoChecksumLines,
        NotAChecksumFile,
        ParsedChecksums,
        algorithm_from_name,
    )
    from hashpar.formats.sums import (
        encode_bsd,
        encode_sums,
        parse_checksum_lines,
        parse_checksums,
    )
    from hashpar.models import Manifest
del TYPE_CHECKING

__all__ = [
    "ChecksumFormat",
    "LineKind",
    "LineProblems",
    "MalformedLine",
    "NoChecksumLines",
    "NotAChecksumFile",
    "ParsedChecksums",
    "algorithm_from_name",
    "bag_tag_files",
    "encode",
    "encode_bagit",
    "encode_bsd",
    "encode_sums",
    "fill_sizes",
    "load_checksums",
    "parse_bagit",
    "parse_checksum_lines",
    "parse_checksums",
    "read_bag",
]


# Where each name lives: imported on first use (PEP 562), so that a command needing only
# ChecksumFormat (every command's options are built at start-up) does not load the codecs.
_SOURCES = {
    "encode_bagit": "hashpar.formats.bagit",
    "parse_bagit": "hashpar.formats.bagit",
    "bag_tag_files": "hashpar.formats.files",
    "fill_sizes": "hashpar.formats.files",
    "load_checksums": "hashpar.formats.files",
    "read_bag": "hashpar.formats.files",
    "ChecksumFormat": "hashpar.formats.records",
    "LineKind": "hashpar.formats.records",
    "LineProblems": "hashpar.formats.records",
    "MalformedLine": "hashpar.formats.records",
    "NoChecksumLines": "hashpar.formats.records",
    "NotAChecksumFile": "hashpar.formats.records",
    "ParsedChecksums": "hashpar.formats.records",
    "algorithm_from_name": "hashpar.formats.records",
    "encode_bsd": "hashpar.formats.sums",
    "encode_sums": "hashpar.formats.sums",
    "parse_checksum_lines": "hashpar.formats.sums",
    "parse_checksums": "hashpar.formats.sums",
}


__getattr__, __dir__ = _lazy_attributes(__name__, _SOURCES, globals())


def encode(manifest: Manifest, format: ChecksumFormat) -> bytes:
    """The manifest's files in ``format``: see :func:`encode_sums`, :func:`encode_bsd`,
    :func:`encode_bagit` (ManifestError for what the format cannot express).
    """
    from hashpar.formats.bagit import encode_bagit
    from hashpar.formats.records import ChecksumFormat
    from hashpar.formats.sums import encode_bsd, encode_sums

    encoders = {
        ChecksumFormat.SUMS: encode_sums,
        ChecksumFormat.BSD: encode_bsd,
        ChecksumFormat.BAGIT: encode_bagit,
    }
    return encoders[ChecksumFormat(format)](manifest)
