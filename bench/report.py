"""The benchmark table (markdown) and docs/benchmarks.md: machine, table, method, findings.

The findings are prose kept in bench/findings.md and copied in verbatim, so a new run
refreshes the figures without losing the analysis.
"""

from __future__ import annotations

import re
import time
from typing import Any

from devtools.procs import ROOT

DOC = ROOT / "docs" / "benchmarks.md"
FINDINGS = ROOT / "bench" / "findings.md"


def _n(value: float) -> str:
    return f"{value / 1e6:g}M" if value >= 1e6 else f"{value / 1e3:g}k"


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _ingest(rows: list[dict[str, float]]) -> list[str]:
    lines = ["### 1. Ingest throughput (start of batch to publication; target >= 0.8x)", "",
             _row("records", "floor rec/s", "ours rec/s", "floor s", "ours s", "ours/floor",
                  "ours s to whole", "floor/whole"),
             _row(*["---"] * 8)]
    lines += [_row(_n(r["records"]), f"{r['floor_rps']:,.0f}", f"{r['ours_rps']:,.0f}",
                   f"{r['floor_s']:.2f}", f"{r['ours_s']:.2f}", f"{r['ratio']:.2f}x",
                   f"{r['whole_s']:.2f}", f"{r['whole_ratio']:.2f}x")
              for r in rows]
    return lines


def _publish(rows: list[dict[str, float]]) -> list[str]:
    lines = ["### 2. Settle: last page stored to published, 1% of the records changed "
             "(target < 0.5 s at 1M, growing with the changes)", "",
             _row("records", "changes", "walked settle s (before)", "paged settle s (ours)",
                  "paged / walked", "PUBLISH Lua step ms", "versions 1 and 2 settle s, "
                  "walked / paged", "Redis bytes of the version / its JSON"),
             _row(*["---"] * 8)]
    lines += [_row(_n(r["records"]), f"{int(r['changed']):,}", f"{r['walked_s']:.3f}",
                   f"{r['paged_s']:.3f}", f"{r['ratio']:.3f}x", f"{r['paged_lua_ms']:.3f}",
                   f"{r['walked_first_s']:.2f}, {r['walked_second_s']:.2f} / "
                   f"{r['paged_first_s']:.2f}, {r['paged_second_s']:.2f}",
                   f"{r['paged_memory_ratio']:.2f}x")
              for r in rows]
    return lines


def _incremental(rows: list[dict[str, Any]], ingest: list[dict[str, float]]) -> list[str]:
    fetched = {int(r["records"]): r["ours_s"] for r in ingest}
    lines = ["### 2b. Incremental batch: 1,000 changes merged onto N records (target <= 0.1x "
             "a full batch; no command > 100 ms)", "",
             _row("records", "full batch s", "of which settle s", "incremental batch s",
                  "of which settle s", "batch ratio", "ratio to table 1", "settle ratio",
                  "Redis CPU s, full / incremental settle",
                  "slowest command ms, full / incremental"),
             _row(*["---"] * 10)]
    for r in rows:
        whole = fetched.get(int(r["records"]))
        lines.append(_row(
            _n(r["records"]), f"{r['full_batch_s']:.2f}", f"{r['full_settle_s']:.2f}",
            f"{r['inc_batch_s']:.3f}", f"{r['inc_settle_s']:.3f}", f"{r['batch_ratio']:.3f}x",
            f"{r['inc_batch_s'] / whole:.3f}x" if whole else "",
            f"{r['settle_ratio']:.3f}x",
            f"{r['full_redis_cpu_s']:.2f} / {r['inc_redis_cpu_s']:.2f}",
            f"{r['full_slowest_ms']:.1f} ({r['full_slowest']}) / {r['inc_slowest_ms']:.1f} "
            f"({r['inc_slowest']})"))
    return lines


def _reads(r: dict[str, float]) -> list[str]:
    return ["### 3. Reads, GET /data?limit=100, 16 connections (target >= 0.9x rps, "
            "p99 <= 1.2x)", "",
            _row("endpoint", "req/s", "p50 ms", "p99 ms"), _row(*["---"] * 4),
            _row("bare ZRANGE 100", f"{r['bare_rps']:,.0f}", f"{r['bare_p50_ms']:.2f}",
                 f"{r['bare_p99_ms']:.2f}"),
            _row("/streams/<name>/data", f"{r['ours_rps']:,.0f}", f"{r['ours_p50_ms']:.2f}",
                 f"{r['ours_p99_ms']:.2f}"),
            _row("ratio ours/bare", f"{r['rps_ratio']:.2f}x", "",
                 f"{r['p99_ratio']:.2f}x")]


def _memory(r: dict[str, Any]) -> list[str]:
    lines = ["### 4. Memory per record (target <= 2x raw JSON)", "",
             _row("what", "bytes/record", "x raw JSON"), _row(*["---"] * 3),
             _row("raw JSON (canonical member)", f"{r['raw_bytes']:.0f}", "1.00x"),
             _row("records zset", f"{r['zset_bytes']:.0f}", f"{r['zset_ratio']:.2f}x"),
             _row("all keys of the version", f"{r['all_bytes']:.0f}", f"{r['all_ratio']:.2f}x")]
    lines += [_row(f"  of which `{key}`", f"{size:.1f}", "")
              for key, size in sorted(r["per_key"].items())]
    return lines


def _scaling(rows: list[dict[str, float]], setup: dict[str, int]) -> list[str]:
    lines = [f"### 5. Scaling: {setup['streams']} streams x {_n(setup['per_stream'])} "
             f"records at once, upstream +{setup['delay_ms']} ms per page", "",
             _row("fetch workers = ingest consumers", "rec/s", "seconds", "speed-up"),
             _row(*["---"] * 4)]
    first = rows[0]["rps"]
    lines += [_row(r["concurrency"], f"{r['rps']:,.0f}", f"{r['seconds']:.2f}",
                   f"{r['rps'] / first:.2f}x") for r in rows]
    return lines


def _compression(rows: list[dict[str, Any]], total: int) -> list[str]:
    lines = [f"### 6. Compression: a whole NDJSON export ({_n(total)} records) and a JSON page "
             "of 1,000, per Accept-Encoding (baseline: identity)", "",
             _row("coding", "export bytes", "x identity size", "export s", "x identity time",
                  "page bytes", "page ms", "x identity"),
             _row(*["---"] * 8)]
    for r in rows:
        page = (f"{r['page_bytes']:,}", f"{r['page_ms']:.1f}", f"{r['page_ratio']:.2f}x"
                ) if "page_ms" in r else ("", "", "")
        lines.append(_row(r["coding"], f"{r['export_bytes']:,}", f"{r['size_ratio']:.3f}x",
                          f"{r['export_s']:.3f}", f"{r['time_ratio']:.2f}x", *page))
    return lines


def _listing(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["### 7. Stream list at 1,000 streams, 1 in 4 running (target p95 < 200 ms; "
             "baseline: the whole list in one answer)", "",
             _row("request", "p50 ms", "p95 ms", "p95 x baseline"), _row(*["---"] * 4)]
    lines += [_row(r["case"], f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}",
                   f"{r['ratio']:.2f}x") for r in rows]
    return lines


def _cluster(r: dict[str, Any]) -> list[str]:
    lines = [f"### 8. The store on one Redis and on a 3-master cluster (a replica each): "
             f"{r['streams']} streams x {_n(r['records_per_stream'])} records at once", "",
             _row("round", "store", "rec/s", "cluster/one", "streams per master",
                  "commands per master", "CPU s per master", "rec/s per core of the busiest"),
             _row(*["---"] * 8)]
    for index, (one, three) in enumerate(zip(r["one"], r["cluster"], strict=True)):
        for label, run in (("one Redis", one), ("cluster", three)):
            ports = sorted(run["command_share"], key=lambda p: -run["command_share"][p])
            lines.append(_row(
                index + 1, label, f"{run['rps']:,.0f}",
                f"{three['rps'] / one['rps']:.2f}x" if run is three else "",
                " / ".join(str(run["streams_per_master"][p]) for p in ports),
                " / ".join(f"{run['command_share'][p]:.0%}" for p in ports),
                " / ".join(f"{run['master_cpu_s'][p]:.1f}" for p in ports),
                f"{run['records'] / max(run['master_cpu_s'].values()):,.0f}"))
    one, three = r["one"][-1], r["cluster"][-1]
    lines += ["", _row("CPU seconds in the last round", "one Redis", "cluster"),
              _row(*["---"] * 3)]
    for name in sorted(set(one["process_cpu_s"]) | set(three["process_cpu_s"])):
        lines.append(_row(name, *(f"{run['process_cpu_s'].get(name, 0.0):.1f}"
                                  for run in (one, three))))
    lines.append(_row("redis: store masters", *(f"{sum(run['master_cpu_s'].values()):.1f}"
                                                for run in (one, three))))
    lines.append(_row("redis: broker and replicas", "(in the one)",
                      f"{three['other_redis_cpu_s']:.1f}"))
    return lines


def _delivery(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["### 9. Delivery into warehouses (targets: full delivery >= 1x dlt loading the "
             "upstream itself; a 1%-changed version >= 10x faster than a full reload)", "",
             _row("destination", "records", "ours full s", "dlt from the upstream s",
                  "speed-up", "same, +20 ms/page s", "speed-up", "1% changed s",
                  "full reload s", "speed-up"),
             _row(*["---"] * 10)]
    lines += [_row(r["destination"], _n(r["records"]), f"{r['ours_s']:.2f}",
                   f"{r['direct_s']:.2f}", f"{r['full_speedup']:.2f}x",
                   f"{r['direct_slow_s']:.2f}", f"{r['slow_speedup']:.2f}x",
                   f"{r['merge_s']:.2f}", f"{r['reload_s']:.2f}",
                   f"{r['merge_speedup']:.1f}x") for r in rows]
    return lines


def _failed(error: str) -> str:
    """Return "failed: <kind>" of a batch's error as bench.scale reports it."""
    found = re.search(r'"kind": ?"(\w+)"', error)
    return f"failed: {found.group(1) if found else error}"


def _scale(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["### 10. Scale: one stream of N records, fresh processes per size (target: "
             "peak memory flat, the 2M run at most 1.2x the 100k run; x smallest: against the "
             "smallest run of the same middleware)", "",
             _row("records", "middleware", "start to readable s", "rec/s",
                  "worker: busiest child MiB", "x smallest", "worker group MiB",
                  "ingest: busiest child MiB", "x smallest", "ingest group MiB",
                  "Redis used MiB"),
             _row(*["---"] * 11)]
    smallest: dict[str, dict[str, Any]] = {}
    for r in rows:
        smallest.setdefault(r["middleware"], r)
    lines += [_row(_n(r["records"]), r["middleware"],
                   _failed(r["error"]) if r["error"] else f"{r['seconds']:.1f}",
                   f"{r['rps']:,.0f}",
                   f"{r['worker_child_mib']:,.0f}",
                   f"{r['worker_child_mib'] / smallest[r['middleware']]['worker_child_mib']:.2f}x",
                   f"{r['worker_group_mib']:,.0f}", f"{r['ingest_child_mib']:,.0f}",
                   f"{r['ingest_child_mib'] / smallest[r['middleware']]['ingest_child_mib']:.2f}x",
                   f"{r['ingest_group_mib']:,.0f}", f"{r['redis_mib']:,.0f}") for r in rows]
    return lines


def tables(results: dict[str, Any]) -> str:
    """Return every measured part as markdown tables."""
    blocks: list[list[str]] = []
    if "ingest" in results:
        blocks.append(_ingest(results["ingest"]))
    if "publish" in results:
        blocks.append(_publish(results["publish"]))
    if "incremental" in results:
        blocks.append(_incremental(results["incremental"], results.get("ingest", [])))
    if "reads" in results:
        blocks.append(_reads(results["reads"]))
    if "memory" in results:
        blocks.append(_memory(results["memory"]))
    if "scaling" in results:
        blocks.append(_scaling(results["scaling"], results["scaling_setup"]))
    if "compression" in results:
        blocks.append(_compression(results["compression"], results["compression_records"]))
    if "listing" in results:
        blocks.append(_listing(results["listing"]))
    if "cluster" in results:
        blocks.append(_cluster(results["cluster"]))
    if "delivery" in results:
        blocks.append(_delivery(results["delivery"]))
    if "scale" in results:
        blocks.append(_scale(results["scale"]))
    return "\n\n".join("\n".join(block) for block in blocks)


def write(results: dict[str, Any], table: str) -> None:
    """Write docs/benchmarks.md: machine, the table, then bench/findings.md."""
    machine = results["machine"]
    head = ["# Benchmarks", "",
            f"Measured by `make bench` (`python -m bench{' --quick' if results['quick'] else ''}`)"
            f" on {time.strftime('%Y-%m-%d')} in {results['seconds'] / 60:.1f} minutes; "
            "every floor and baseline in the same run, on the same machine.", "",
            "Machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()) + ".",
            "", "## Results", ""]
    findings = FINDINGS.read_text() if FINDINGS.exists() else ""
    DOC.write_text("\n".join(head) + table + "\n\n" + findings)
