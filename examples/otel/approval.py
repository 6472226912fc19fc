"""OpenTelemetry with hitl-async: an expense approval that pauses for a human, and whose answer is
queued and run by a Worker, traced end to end and exported to the console or to an OTLP
collector.

    python examples/otel/approval.py                       # spans and metrics on stdout
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \\
        python examples/otel/approval.py --exporter otlp   # to a collector (OTLP over HTTP)

hitl-async itself needs no code for this: configuring the providers (`configure()` below, as
any OpenTelemetry application does) is enough. The trace: the span "expense approval" holds the
run that pauses (`hitl.run` > `hitl.step` > `hitl.node review`) and the `asubmit` of the answer;
the Worker's run (in production another process) continues that trace, and links to the paused
run. Log records carry the thread, run and checkpoint ids.

Needs `pip install "hitl-async[otel,examples]"` (the API, the SDK and the OTLP exporter)
and the SQLite driver (`pip install -e drivers/sqlite`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from typing_extensions import TypedDict

from hitl_async import END, START, Command, StateGraph, Worker, connect, interrupt
from hitl_async.telemetry import RunContextFilter


class Expense(TypedDict, total=False):
    item: str
    amount: float
    decision: str
    status: str


async def check(state: Expense) -> dict[str, Any]:
    return {"item": state["item"].strip()}


async def review(state: Expense) -> dict[str, Any]:
    return {"decision": interrupt(f"Approve {state['item']} for ${state['amount']:.2f}?")}


async def book(state: Expense) -> dict[str, Any]:
    return {"status": f"{state['item']}: {state['decision']}"}


def build(store: str) -> Any:
    b = StateGraph(Expense)
    b.add_node("check", check)
    b.add_node("review", review)
    b.add_node("book", book)
    b.add_edge(START, "check")
    b.add_edge("check", "review")
    b.add_edge("review", "book")
    b.add_edge("book", END)
    return b.compile(checkpointer=connect(store), name="expenses")


def configure(exporter: str) -> tuple[TracerProvider, MeterProvider]:
    """The application's OpenTelemetry set-up: spans and metrics to the console, or over OTLP
    to the collector named by OTEL_EXPORTER_OTLP_ENDPOINT (the exporters read it)."""
    spans: SpanExporter
    points: MetricExporter
    if exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        spans, points = OTLPSpanExporter(), OTLPMetricExporter()
    else:
        spans, points = ConsoleSpanExporter(), ConsoleMetricExporter()
    resource = Resource.create({"service.name": "hitl-otel-example"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(points, export_interval_millis=60_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def configure_logging() -> None:
    """Log lines with the run's ids: the filter on the handler gives every record the fields
    (hitl-async's records have them already), so the format works for all loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(
        logging.Formatter(
            "%(levelname)s %(name)s thread=%(thread_id)s run=%(run_id)s "
            "checkpoint=%(checkpoint_id)s %(message)s"
        )
    )
    logging.basicConfig(level=logging.INFO, handlers=[handler])


async def approve(store: str, thread: str) -> str:
    graph = build(store)
    config = {"configurable": {"thread_id": thread}}
    tracer = trace.get_tracer("examples.otel")
    with tracer.start_as_current_span("expense approval") as flow:
        paused = await graph.ainvoke({"item": " laptop ", "amount": 2400.0}, config)
        print(f"paused: {paused['__interrupt__'][0].value}")
        # The answer, queued: the request carries this span's trace context.
        handle = await graph.asubmit(Command(resume="approved"), config)
        logging.getLogger("examples.otel").info("queued the answer as run %s", handle.id)
    # In production a worker process serves the queue (`hitl worker ...`); here, in-process.
    await Worker(graph, poll=0.05).run(max_requests=1)
    result = await handle.result(timeout=30)
    await graph.checkpointer.aclose()
    print(f"status: {result['status']}")
    return f"{flow.get_span_context().trace_id:032x}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--exporter", choices=["console", "otlp"], default="console")
    parser.add_argument("--store", default=None, help="a store URL (default: a temp SQLite file)")
    parser.add_argument("--thread", default="expense-1")
    args = parser.parse_args()
    tracer_provider, meter_provider = configure(args.exporter)
    configure_logging()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or f"sqlite:///{os.path.join(tmp, 'expenses.db')}"
        trace_id = asyncio.run(approve(store, args.thread))
    tracer_provider.shutdown()  # flush the spans
    meter_provider.shutdown()  # and the metrics
    print(f"trace: {trace_id}")


if __name__ == "__main__":
    main()
