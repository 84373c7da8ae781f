"""The verify report's rendering, pure: a checksum file's unused lines are part of it."""

from __future__ import annotations

import json

from hashpar.cli.render import human_lines, report_json
from hashpar.compare import Report
from hashpar.formats import records


def test_a_reports_input_lines_are_in_the_json_its_summary_and_its_verdict() -> None:
    kept = (
        records.MalformedLine(2, "x is listed again ...", records.LineKind.CONFLICTING),
        records.MalformedLine(3, "not a checksum line: \x1b[31m"),
    )
    lines = records.LineProblems(kept, malformed=1_500, conflicting=1)
    report = Report(verified=1, ok=1, input_lines=lines)
    assert report.differs  # exit 1: a line of the input could not be used
    document = json.loads(report_json(report))
    assert (document["summary"]["malformed"], document["summary"]["conflicting"]) == (1_500, 1)
    assert document["input_lines"] == [
        {"line": 2, "kind": "conflicting", "error": "x is listed again ..."},
        {"line": 3, "kind": "malformed", "error": "not a checksum line: \x1b[31m"},
    ]
    assert list(human_lines(report)) == [
        "hashpar: 1 entry verified: 1 ok, 0 modified, 0 missing, 0 new, 0 moved, 0 errors, "
        "1500 malformed lines, 1 conflicting line"
    ]


def test_a_report_without_input_lines_has_the_keys_at_zero_and_the_summary_unchanged() -> None:
    report = Report(verified=1, ok=1)
    assert not report.differs
    document = json.loads(report_json(report))
    assert (document["summary"]["malformed"], document["summary"]["conflicting"]) == (0, 0)
    assert document["input_lines"] == []
    assert list(human_lines(report)) == [
        "hashpar: 1 entry verified: 1 ok, 0 modified, 0 missing, 0 new, 0 moved, 0 errors"
    ]
