"""The example programs run as documented (subprocesses, real SQLite files)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_subgraph_approval_example_on_sqlite(tmp_path: Path) -> None:
    out = run(
        str(ROOT / "examples/subgraph_approval.py"),
        "--answer",
        "reject",
        "--store",
        f"sqlite:///{tmp_path / 'p.db'}",
    )
    assert out.splitlines() == [
        "paused in ('approval',): Approve laptop for $2400.00? (risk high)",
        "subgraph waiting at ('review',)",
        "status: laptop: cancelled",
        "node runs: ['assess', 'review', 'review', 'order']",
    ]


def test_demo_runs_end_to_end_on_sqlite(tmp_path: Path) -> None:
    out = run(str(ROOT / "examples/demo.py"), "--answer", "yes", cwd=tmp_path)
    assert "Paused at ('manager',): Approve vendor-contract for $5000.00?" in out
    assert out.rstrip().endswith("Outcome: EXECUTED: vendor-contract")
    assert (tmp_path / "hitl-demo.db").exists()


def test_demo_resumes_from_another_process(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    first = run(
        str(ROOT / "examples/demo.py"), "--store", store, "--thread", "t-42", "--stop-at-pause"
    )
    assert "Resume it from any process that shares the store" in first
    second = run(
        str(ROOT / "examples/demo.py"),
        "--store",
        store,
        "--thread",
        "t-42",
        "--resume-only",
        "--answer",
        "no",
    )
    assert second.rstrip().endswith("Outcome: REJECTED: vendor-contract")
