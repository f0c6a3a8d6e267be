"""The `data-streams` command line against the real system (web, ingest, worker, beat, a
real upstream) with tokens set: every command with --json parsed, the exit codes, a wrong
token, an unreachable server, `apply` twice being a no-op, the progress bars on a terminal.

It runs the installed console script (make installs it with `pip install -e .`), with this
tree first on PYTHONPATH so the code under test is this tree's.
"""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.redis_server import RedisServer, free_port
from devtools.system import System
from tests.support.upstream import Upstream
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "data-streams"
API_TOKEN = "cli-api-token-4d8e1a"
READ_TOKEN = "cli-read-token-9b2f6c"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    assert SCRIPT.exists(), f"{SCRIPT} is missing: make installs it (pip install -e .)"
    server = RedisServer(tmp_path_factory.mktemp("redis-cli")).start()
    system = System(server.url, ROOT / "test-output" / "cli", API_TOKEN=API_TOKEN,
                    READ_TOKEN=READ_TOKEN)
    try:
        yield system.start_all()
    finally:
        system.stop_all()
        server.stop()


def environment(system: System, token: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DS_URL": system.api(""), "DS_TOKEN": token, "COLUMNS": "200",
            "PYTHONPATH": str(ROOT), **extra}


def cli(system: System, *args: str, token: str = API_TOKEN, timeout: float = 60,
        **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `data-streams ARGS`; assert that no failure ever prints a traceback."""
    done = subprocess.run([str(SCRIPT), *args], env=environment(system, token, **extra),
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def cli_json(system: System, *args: str, code: int = 0, **kwargs: Any) -> Any:
    """Run a command with --json; assert its exit code; return its parsed output."""
    done = cli(system, *args, "--json", **kwargs)
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


def on_terminal(system: System, *args: str, timeout: float = 60) -> tuple[int, str]:
    """Run a command with stderr on a pseudo-terminal (where bars draw); return (code, tty)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([str(SCRIPT), *args], env=environment(system, API_TOKEN),
                               stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command ended and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=10), b"".join(chunks).decode(errors="replace")


def streams_file(tmp_path: Path, upstream: Upstream, interval: int = 300,
                 **names: str) -> Path:
    """Write a streams file (YAML, ${VARS} expanded by the command line)."""
    lines = ["streams:"]
    for name, feed in names.items():
        lines += [f"  {name}:", "    source:", f"      url: ${{CLI_UPSTREAM}}/feeds/{feed}",
                  "      records_path: data",
                  "      pagination: {type: next_url, next_url_path: next}",
                  "    key: id", f"    interval_seconds: {interval}"]
    path = tmp_path / "streams.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def define(system: System, upstream: Upstream, tmp_path: Path, name: str,
           records: list[dict[str, Any]], **feed: Any) -> None:
    upstream.feed(name, records, **feed)
    path = streams_file(tmp_path, upstream, **{name: name})
    cli_json(system, "apply", str(path), CLI_UPSTREAM=upstream.base_url)


def test_apply_creates_updates_and_applying_twice_changes_nothing(
        deployed: System, upstream: Upstream, tmp_path: Path) -> None:
    path = streams_file(tmp_path, upstream, **{"cli-a": "cli-a", "cli-b": "cli-b"})
    env = {"CLI_UPSTREAM": upstream.base_url}

    first = cli_json(deployed, "apply", str(path), **env)
    assert [(s["stream"], s["action"]) for s in first["streams"]] == [
        ("cli-a", "created"), ("cli-b", "created")]
    before = [cli_json(deployed, "show", name) for name in ("cli-a", "cli-b")]

    again = cli_json(deployed, "apply", str(path), **env)
    assert [(s["action"], s["changes"]) for s in again["streams"]] == [
        ("unchanged", []), ("unchanged", [])]
    assert [cli_json(deployed, "show", name) for name in ("cli-a", "cli-b")] == before
    assert cli_json(deployed, "batches", "cli-a")["batches"] == []  # nothing was started

    path.write_text(path.read_text().replace("interval_seconds: 300", "interval_seconds: 120",
                                             1))
    text = cli(deployed, "apply", str(path), **env)
    assert text.returncode == 0, text.stderr
    assert "cli-a: updated" in text.stdout and "~ interval_seconds: 300 -> 120" in text.stdout
    assert "cli-b: unchanged" in text.stdout
    assert cli_json(deployed, "show", "cli-a")["definition"]["interval_seconds"] == 120


def test_start_wait_then_read_the_stream_every_way(deployed: System, upstream: Upstream,
                                                  tmp_path: Path) -> None:
    records = [{"id": i, "note": 'say "hi",\nthen go' if i % 4 == 0 else "plain"}
               for i in range(1, 46)]
    define(deployed, upstream, tmp_path, "cli-run", records, page_size=10)

    started = cli_json(deployed, "start", "cli-run", "--wait", "--timeout", "60")
    assert started["start"]["state"] == "running"
    assert started["batch"]["status"] == "complete" and started["batch"]["records"] == 45

    row = next(s for s in cli_json(deployed, "streams")["streams"] if s["stream"] == "cli-run")
    assert (row["state"], row["current_version"]) == ("running", 1)
    assert row["last_batch"]["status"] == "complete" and row["age_seconds"] >= 0
    table = cli(deployed, "streams").stdout
    assert "cli-run" in table and "running" in table and "v1 complete" in table
    shown = cli_json(deployed, "show", "cli-run")
    assert shown["current_version"] == 1 and shown["definition"]["key"] == "id"
    assert "current version" in cli(deployed, "show", "cli-run").stdout
    assert [b["status"] for b in cli_json(deployed, "batches", "cli-run")["batches"]] == [
        "complete"]

    ndjson, table_csv = tmp_path / "run.ndjson", tmp_path / "run.csv"
    written = cli_json(deployed, "export", "cli-run", "--format", "ndjson", "--out",
                       str(ndjson))
    assert (written["records"], written["version"]) == (45, 1)
    assert [json.loads(line) for line in ndjson.read_text().splitlines()] == records
    assert cli_json(deployed, "export", "cli-run", "--format", "csv", "--out",
                    str(table_csv))["records"] == 45
    with table_csv.open(newline="") as file:
        assert len(list(csv.DictReader(file))) == 45  # quoted newlines are no rows

    upstream.feed("cli-run", [{**records[0], "note": "changed"}, *records[2:],
                              {"id": 99, "note": "new"}], page_size=10)
    assert cli_json(deployed, "stop", "cli-run")["was_running"] is True
    assert cli_json(deployed, "start", "cli-run", "--wait")["batch"]["version"] == 2
    changes = cli_json(deployed, "changes", "cli-run", "--since", "1", "--limit", "1")
    assert (changes["from"], changes["to"]) == (1, 2)
    assert changes["added"] == [{"id": 99, "note": "new"}]
    assert changes["updated"] == [{**records[0], "note": "changed"}]
    assert changes["removed"] == [2]
    assert "1 added, 1 updated, 1 removed" in cli(deployed, "changes", "cli-run", "--since",
                                                  "1").stdout
    cli_json(deployed, "stop", "cli-run")


def test_progress_bars_draw_on_a_terminal(deployed: System, upstream: Upstream,
                                          tmp_path: Path) -> None:
    define(deployed, upstream, tmp_path, "cli-bar", [{"id": i} for i in range(1, 121)],
           page_size=10, delay=0.25)

    code, screen = on_terminal(deployed, "start", "cli-bar", "--wait")
    assert code == 0, screen
    assert "cli-bar: batch 1" in screen and " pages " in screen and " records" in screen

    code, screen = on_terminal(deployed, "export", "cli-bar", "--out",
                               str(tmp_path / "bar.ndjson"))
    assert code == 0 and "120/120" in screen, screen
    cli_json(deployed, "stop", "cli-bar")


def test_a_batch_that_does_not_publish_exits_7_and_can_be_decided(
        deployed: System, upstream: Upstream, tmp_path: Path) -> None:
    define(deployed, upstream, tmp_path, "cli-gate", [])  # an empty batch is quarantined

    held = cli(deployed, "start", "cli-gate", "--wait", "--timeout", "60")
    assert held.returncode == 7 and "ended quarantined: empty_batch" in held.stderr
    published = cli_json(deployed, "publish", "cli-gate", "1")
    assert published["batch"]["status"] == "complete"
    refused = cli_json(deployed, "publish", "cli-gate", "1", code=4)  # already published
    assert refused["error"]["status"] == 409 and "cannot be published" in refused[
        "error"]["message"]

    cli_json(deployed, "stop", "cli-gate")
    assert cli(deployed, "start", "cli-gate", "--wait").returncode == 7
    discarded = cli_json(deployed, "discard", "cli-gate", "2")
    assert discarded["batch"]["status"] == "discarded"
    assert cli_json(deployed, "discard", "cli-gate", "99", code=3)["error"]["code"] == (
        "batch_not_found")
    cli_json(deployed, "stop", "cli-gate")


def test_stop_cancel_ends_the_batch_a_waiting_command_watches(
        deployed: System, upstream: Upstream, tmp_path: Path) -> None:
    define(deployed, upstream, tmp_path, "cli-slow", [{"id": i} for i in range(1, 301)],
           page_size=10, delay=0.5)
    waiting = subprocess.Popen([str(SCRIPT), "start", "cli-slow", "--wait", "--json"],
                               env=environment(deployed, API_TOKEN), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: cli_json(deployed, "show", "cli-slow")["in_progress"], timeout=30,
                 what="the batch in flight")
        stopped = cli_json(deployed, "stop", "cli-slow", "--cancel")
        assert stopped["cancelled_version"] == 1 and stopped["was_running"] is True
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert waiting.returncode == 7, err
    assert json.loads(out)["batch"]["status"] == "cancelled"
    assert "ended cancelled" in err


def test_errors_print_the_api_message_and_exit_with_its_code(
        deployed: System, upstream: Upstream, tmp_path: Path) -> None:
    missing = cli(deployed, "show", "no-such-stream")
    assert missing.returncode == 3
    assert "stream 'no-such-stream' does not exist" in missing.stderr
    assert cli_json(deployed, "show", "no-such-stream", code=3)["error"]["code"] == (
        "stream_not_found")

    wrong = cli_json(deployed, "streams", code=6, token="not-the-token")
    assert (wrong["error"]["status"], wrong["error"]["code"]) == (403, "forbidden")
    assert cli_json(deployed, "streams", code=6, token="")["error"]["status"] == 401
    define(deployed, upstream, tmp_path, "cli-err", [{"id": 1}])
    assert cli_json(deployed, "stop", "cli-err", code=6, token=READ_TOKEN)[
        "error"]["status"] == 403  # the read token reads, never writes
    assert cli_json(deployed, "show", "cli-err", token=READ_TOKEN)["stream"] == "cli-err"

    down = cli(deployed, "streams", DS_URL=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 5 and "cannot reach http://127.0.0.1:" in down.stderr

    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"streams": {"cli-bad": {"source": {"url": 5}}}}))
    refused = cli_json(deployed, "apply", str(invalid), code=4)
    assert refused["error"]["status"] == 422 and "source.url" in refused["error"]["message"]
    (tmp_path / "broken.yaml").write_text("streams: [unclosed\n")
    assert cli(deployed, "apply", str(tmp_path / "broken.yaml")).returncode == 4
    assert cli(deployed, "start").returncode == 2  # usage: NAME is missing


def test_delete_forgets_the_stream(deployed: System, upstream: Upstream,
                                   tmp_path: Path) -> None:
    define(deployed, upstream, tmp_path, "cli-del", [{"id": 1}])
    assert cli_json(deployed, "delete", "cli-del") == {"stream": "cli-del", "deleted": True}
    assert cli(deployed, "show", "cli-del").returncode == 3
    assert cli_json(deployed, "delete", "cli-del", code=3)["error"]["code"] == (
        "stream_not_found")
