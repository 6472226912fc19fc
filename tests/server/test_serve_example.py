"""examples/serve runs as its README says: `hitl serve` on SQLite and the SDK client."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from apps.servers import ROOT, serving, store_url

EXAMPLE = ROOT / "examples" / "serve"


def test_example_serves_and_the_client_approves(tmp_path: Path) -> None:
    url = store_url("sqlite", tmp_path)
    with serving(url, tmp_path, config=EXAMPLE / "langgraph.json") as server:
        assert server.url is not None
        done = subprocess.run(
            [sys.executable, str(EXAMPLE / "client.py"), server.url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "update: {'check': {'decision': 'needs review'}}"
    assert "waiting for review: [True]" in lines
    assert lines[-1] == (
        "final: {'who': 'ada', 'amount': 380.0, 'purpose': 'a conference', "
        "'decision': 'approved', 'note': 'approved: $380.00'}"
    )
