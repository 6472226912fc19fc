"""examples/otel/approval.py runs as documented: to the console, and over OTLP to the collector
named by OTEL_EXPORTER_OTLP_ENDPOINT (here a small HTTP server that decodes what it receives)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from apps.services import require_package

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples/otel/approval.py"


def run(*args: str, **env: str) -> str:
    require_package("opentelemetry.sdk", '".[test]" (opentelemetry-sdk)')
    require_package("hitl_async_sqlite", "drivers/sqlite")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_console() -> None:
    out = run()
    lines = out.splitlines()
    assert "paused: Approve laptop for $2400.00?" in lines
    assert "status: laptop: approved" in lines
    trace_id = next(line.split()[1] for line in lines if line.startswith("trace: "))
    for name in ("hitl.run", "hitl.step", "hitl.node review", "hitl.node book"):
        assert f'"name": "{name}"' in out
    assert out.count(f'"trace_id": "0x{trace_id}"') >= 10  # both runs, in the flow's trace
    assert '"name": "hitl.run.finished"' in out  # the metrics, printed at shutdown


@pytest.fixture
def collector() -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    received: dict[str, list[bytes]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.setdefault(self.path, []).append(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_otlp_to_the_collector_in_the_environment(
    collector: tuple[str, dict[str, list[bytes]]],
) -> None:
    require_package("opentelemetry.proto", '".[test]" (opentelemetry-exporter-otlp-proto-http)')
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    endpoint, received = collector
    out = run("--exporter", "otlp", OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    trace_id = next(line.split()[1] for line in out.splitlines() if line.startswith("trace: "))
    spans = []
    for body in received["/v1/traces"]:
        request = ExportTraceServiceRequest.FromString(body)
        spans += [s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans]
    names = {s.name for s in spans if s.trace_id.hex() == trace_id}
    assert {"expense approval", "hitl.run", "hitl.node review", "hitl.node book"} <= names
    assert any(s.name.startswith("hitl.store.") for s in spans)
    metric_names = set()
    for body in received["/v1/metrics"]:
        request = ExportMetricsServiceRequest.FromString(body)
        metric_names |= {
            m.name for r in request.resource_metrics for sm in r.scope_metrics for m in sm.metrics
        }
    assert {"hitl.run.started", "hitl.node.duration", "db.client.operation.duration"} <= (
        metric_names
    )
