"""The command line's own logic: what it may import, exit codes, diffs, record counting.
(Every command runs against the real system in tests/integration/test_cli.py.)"""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path

import pytest

from dscli import client
from dscli.apply import diff
from dscli.progress import RecordCounter

DSCLI = Path(__file__).resolve().parents[2] / "dscli"


def test_the_command_line_imports_nothing_of_the_server() -> None:
    """It talks HTTP only, so it runs against a remote deployment (and installs alone)."""
    for path in DSCLI.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in {"app", "tasks", "config", "demo"}, (path, name)


@pytest.mark.parametrize(("status", "code"), [
    (400, client.REFUSED), (401, client.AUTH), (403, client.AUTH), (404, client.NOT_FOUND),
    (409, client.REFUSED), (410, client.REFUSED), (422, client.REFUSED),
    (429, client.UNAVAILABLE), (500, client.FAILED), (503, client.UNAVAILABLE)])
def test_exit_codes_follow_the_status(status: int, code: int) -> None:
    assert client.exit_code_of(status) == code


def test_diff_names_each_changed_path() -> None:
    before = {"key": "id", "source": {"url": "u1", "params": {"a": 1}}, "middleware": []}
    after = {"key": "id", "source": {"url": "u2", "params": {}}, "order_by": "ts",
             "middleware": [{"type": "drop"}]}
    assert diff(before, after) == [
        {"path": "middleware", "before": [], "after": [{"type": "drop"}]},
        {"path": "order_by", "after": "ts"},
        {"path": "source.params.a", "before": 1},
        {"path": "source.url", "before": "u1", "after": "u2"}]
    assert diff(after, after) == []


def test_csv_rows_are_counted_across_chunks_and_quoted_newlines() -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "note"])
    rows = [[i, 'a "quoted"\nline' if i % 3 == 0 else "plain"] for i in range(50)]
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    for size in (1, 2, 7, 64, len(data)):
        counter = RecordCounter("csv")
        counted = 0
        for start in range(0, len(data), size):
            counted = counter.feed(data[start:start + size])
        assert counted == len(rows), size


def test_ndjson_records_are_lines() -> None:
    counter = RecordCounter("ndjson")
    counter.feed(b'{"a": 1}\n{"a"')
    assert counter.feed(b': 2}\n') == 2
