"""A traced worker for the OpenTelemetry tests: `python -m apps.otel_app --store URL --options
JSON --spans FILE --metrics FILE --requests N` (with `tests/` on PYTHONPATH).

It configures the OpenTelemetry SDK as an application would (a tracer provider exporting each
finished span as one JSON line to FILE, a meter provider read at exit), serves `requests` queued
runs of `approval_graph` with a `hitl_async.Worker`, then writes the metrics as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, Worker, connect, interrupt


class Approval(TypedDict, total=False):
    request: str
    answer: str
    done: str


async def prepare(state: Approval) -> dict[str, Any]:
    return {"request": state["request"].strip()}


async def review(state: Approval) -> dict[str, Any]:
    return {"answer": interrupt({"approve": state["request"]})}


async def act(state: Approval) -> dict[str, Any]:
    return {"done": f"{state['request']}={state['answer']}:{os.getpid()}"}


def approval_graph(store: str, options: dict[str, Any]) -> Any:
    b = StateGraph(Approval)
    b.add_node("prepare", prepare)
    b.add_node("review", review)
    b.add_node("act", act)
    b.add_edge(START, "prepare")
    b.add_edge("prepare", "review")
    b.add_edge("review", "act")
    b.add_edge("act", END)
    return b.compile(checkpointer=connect(store, **options), name="otel-approval")


def metrics_json(reader: Any) -> list[dict[str, Any]]:
    """Every data point as {name, attributes, value or count}."""
    out = []
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    out.append(
                        {
                            "name": metric.name,
                            "attributes": dict(point.attributes or {}),
                            "value": getattr(point, "value", None),
                            "count": getattr(point, "count", None),
                        }
                    )
    return out


async def serve(args: argparse.Namespace, reader: Any) -> None:
    graph = approval_graph(args.store, json.loads(args.options))
    worker = Worker(graph, concurrency=1, poll=0.1)
    await worker.run(max_requests=args.requests)
    await graph.checkpointer.aclose()
    with open(args.metrics, "w") as f:
        json.dump(metrics_json(reader), f)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--options", default="{}")
    parser.add_argument("--spans", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--requests", type=int, default=1)
    args = parser.parse_args()

    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    out = open(args.spans, "a")  # noqa: SIM115 - open until the process exits
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(
            ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")
        )
    )
    trace.set_tracer_provider(provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    asyncio.run(serve(args, reader))
    provider.shutdown()
    out.close()


if __name__ == "__main__":
    main()
