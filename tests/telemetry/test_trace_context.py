"""Trace context across processes: a resume queued with `asubmit` is run by a Worker in another
process, inside the caller's trace, and its run links to the span of the run that paused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from apps.otel_app import approval_graph
from apps.services import require_package
from apps.stores import SharedStore
from conftest import Otel

from hitl_async import Command
from hitl_async.telemetry import TRACE_CONTEXT_KEY, with_trace_context

require_package("opentelemetry.sdk", '".[test]" (opentelemetry-sdk)')
from opentelemetry import trace  # noqa: E402

pytestmark = pytest.mark.anyio

TESTS = Path(__file__).resolve().parents[1]


def _hex(value: int) -> str:
    return f"0x{value:016x}"


def worker(store: SharedStore, spans: Path, metrics: Path, requests: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "apps.otel_app",
            "--store",
            store.url,
            "--options",
            json.dumps(store.options),
            "--spans",
            str(spans),
            "--metrics",
            str(metrics),
            "--requests",
            str(requests),
        ],
        cwd=TESTS,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def children(spans: list[dict[str, Any]], parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in spans if s["parent_id"] == parent["context"]["span_id"]]


async def test_a_resume_run_by_a_worker_elsewhere_continues_the_trace_and_links_the_pause(
    shared_store: SharedStore, tmp_path: Path, otel: Otel
) -> None:
    graph = approval_graph(shared_store.url, shared_store.options)
    cfg = {"configurable": {"thread_id": "t-otel"}}
    tracer = trace.get_tracer("tests")
    with tracer.start_as_current_span("approval flow") as flow:
        paused = await graph.ainvoke({"request": " laptop "}, cfg)
        (asked,) = paused["__interrupt__"]
        handle = await graph.asubmit(Command(resume="yes"), cfg)
    trace_id = f"0x{flow.get_span_context().trace_id:032x}"

    spans_file, metrics_file = tmp_path / "spans.jsonl", tmp_path / "metrics.json"
    proc = worker(shared_store, spans_file, metrics_file, requests=1)
    try:
        result = await handle.result(timeout=60)
    finally:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    await graph.checkpointer.aclose()
    request, answer_pid = result["done"].split(":")
    assert request == "laptop=yes" and int(answer_pid) == proc.pid != os.getpid()

    # Here: the run that paused, a child of the caller's span, with its interrupt.
    (paused_run,) = otel.named("hitl.run")
    assert paused_run.parent is not None
    assert paused_run.parent.span_id == flow.get_span_context().span_id
    assert paused_run.attributes["hitl.run.outcome"] == "paused"
    assert [
        e.attributes["hitl.interrupt_id"] for e in paused_run.events if e.name == "hitl.interrupt"
    ] == [asked.id]

    # There: every span of the worker's run is in the caller's trace.
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    assert spans and {s["context"]["trace_id"] for s in spans} == {trace_id}
    (resumed,) = [s for s in spans if s["name"] == "hitl.run"]
    assert resumed["parent_id"] == _hex(flow.get_span_context().span_id)
    attributes = resumed["attributes"]
    assert attributes["hitl.thread_id"] == "t-otel"
    assert attributes["hitl.graph"] == "otel-approval"
    assert attributes["hitl.run_id"] == handle.id
    assert attributes["hitl.run.outcome"] == "completed"
    assert attributes["db.system"] == {"sqlite": "sqlite", "postgres": "postgresql"}.get(
        shared_store.kind, shared_store.kind
    )
    # ... linked to the run that paused, hours (here: moments) earlier, in another process.
    (link,) = resumed["links"]
    assert link["context"]["span_id"] == _hex(paused_run.context.span_id)
    assert link["context"]["trace_id"] == trace_id
    assert link["attributes"] == {"hitl.link": "paused_run"}
    events = {e["name"]: e["attributes"] for e in resumed["events"]}
    assert events["hitl.resume"]["hitl.interrupt_id"] == asked.id
    assert events["hitl.resume"]["hitl.node"] == "review"
    assert events["hitl.resume"]["hitl.interrupt.wait_s"] >= 0
    assert events["hitl.lease.acquire"]["hitl.lease.token"] >= 2

    # The tree: run -> steps -> nodes; the store calls inside the run.
    steps = [s for s in children(spans, resumed) if s["name"] == "hitl.step"]
    assert [s["attributes"]["hitl.step"] for s in steps] == [2, 3]
    nodes = [n["name"] for s in steps for n in children(spans, s)]
    assert "hitl.node review" in nodes and "hitl.node act" in nodes
    stores = {s["name"] for s in spans if s["name"].startswith("hitl.store.")}
    assert {"hitl.store.acquire_and_load", "hitl.store.commit_many"} <= stores
    node = next(s for s in spans if s["name"] == "hitl.node act")
    assert node["attributes"]["hitl.node"] == "act"
    assert node["attributes"]["hitl.thread_id"] == "t-otel"
    assert node["attributes"]["hitl.node.outcome"] == "done"

    # The worker's metrics: one claim, the human's wait, the queue drained.
    points = json.loads(metrics_file.read_text())

    def total(name: str) -> float:
        return sum(p["value"] if p["value"] is not None else p["count"] for p in points
                   if p["name"] == name)  # fmt: skip

    assert total("hitl.queue.claim.latency") == 1
    assert total("hitl.queue.depth") == -1
    assert total("hitl.interrupt.wait") == 1
    assert total("hitl.run.finished") == 1
    assert otel.total("hitl.queue.depth", **{"hitl.queue": "otel-approval"}) == 1


def test_with_trace_context_carries_the_current_span_or_a_given_carrier(otel: Otel) -> None:
    config: dict[str, Any] = {"configurable": {"thread_id": "t"}}
    assert with_trace_context(config) is config  # no current span: nothing to carry
    with trace.get_tracer("tests").start_as_current_span("request") as span:
        carried = with_trace_context(config)
    ctx = span.get_span_context()
    assert carried[TRACE_CONTEXT_KEY]["traceparent"].startswith(
        f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-"
    )
    assert TRACE_CONTEXT_KEY not in config  # the caller's dict is left alone
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    from_headers = with_trace_context(config, headers)
    assert from_headers[TRACE_CONTEXT_KEY]["traceparent"] == headers["traceparent"]
