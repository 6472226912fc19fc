"""Smoke test of the benchmark suite: `python -m benchmarks --quick` on memory and SQLite.

It checks that the suite completes, that every hitl-async correctness check held (the suite
exits 1 otherwise) and that the JSON, Markdown and PNG reports name every workload. `drain`
(worker processes, hitl-async only) runs on SQLite; on memory, and for LangGraph, it is marked
not applicable. It never asserts on timings. Needs rich, matplotlib and psutil (in the `test`
extra); LangGraph is used only if the `bench` extra is installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = [
    "example1-sync",
    "chain10-sync",
    "chain10-def",
    "chain10",
    "threads200-sync",
    "threads200-def",
    "threads200",
    "latency",
    "fanout200-sync",
    "fanout200-def",
    "fanout200",
    "turns300",
    "state1mb",
    "storeput",
    "storeget",
    "storesearch",
    "storemix",
    "tokens200-sync",
    "tokens200",
    "rss1000",
    "drain",
]
DRIVERS = ["memory", "sqlite"]


def test_quick_suite_completes_and_writes_reports(tmp_path: Path) -> None:
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "benchmarks", "--quick", "--drivers", ",".join(DRIVERS)]
    done = subprocess.run(
        [*cmd, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    data = json.loads((out / "results.json").read_text())
    assert data["settings"]["quick"] is True
    assert {"cpu_count", "python", "servers", "packages"} <= set(data["machine"])
    rows = {(r["workload"], r["driver"]): r for r in data["rows"]}
    assert set(rows) == {(w, d) for w in WORKLOADS for d in DRIVERS}
    for (workload, driver), row in rows.items():
        hitl, lg = row["hitl-async"], row["langgraph"]
        assert hitl["failures"] == [], (workload, driver, hitl["failures"])
        if workload == "drain":
            assert lg["not_applicable"] and not lg["samples"] and not lg["failures"], lg
            if driver == "memory":
                assert hitl["not_applicable"] and not hitl["samples"], hitl
                continue
        assert hitl["samples"] and hitl["median"] is not None, (workload, driver)
        if workload == "drain":
            details = hitl["details"]
            assert details["requests"] == 200 and details["workers"] == 2, details
            assert details["drain_s"] > 0 and details["min_per_worker"] >= 0, details
            continue
        # LangGraph may fail (reported, not raised) or be absent, but never silently empty.
        assert lg["samples"] or lg["failures"] or lg["skipped"], (workload, driver)
    for chain in ("chain10", "chain10-def", "chain10-sync"):
        assert rows[(chain, "sqlite")]["floor_us_per_write"]["median"] is not None

    report = (out / "results.md").read_text()
    for workload in WORKLOADS:
        assert f"| {workload} |" in report
    assert "python -m benchmarks --quick" in report
    assert (out / "ratios.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
