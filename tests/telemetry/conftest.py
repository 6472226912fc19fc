"""OpenTelemetry SDK fixtures: fresh global providers with in-memory exporters per test.

OpenTelemetry lets a process set its global providers once; tests need a fresh pair each, and
must leave none behind (the rest of the suite runs with OpenTelemetry recording nothing). So the
fixture sets them and afterwards puts the API's globals back as they were at start-up, the way
OpenTelemetry's own test utilities do, and makes hitl-async detect again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from apps.services import require_package

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler


def _reset_globals() -> None:
    from opentelemetry import trace
    from opentelemetry.metrics import _internal as metrics_internal
    from opentelemetry.util._once import Once

    from hitl_async.telemetry._detect import reset_for_tests

    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    metrics_internal._METER_PROVIDER = None  # type: ignore[attr-defined]
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    reset_for_tests()


@dataclass
class Otel:
    """The in-memory exporters of one test."""

    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name.startswith(prefix)]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of every point of the metric `name`."""
        data = self.reader.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        for rm in data.resource_metrics if data is not None else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        out += [(dict(p.attributes or {}), p) for p in metric.data.data_points]
        return out

    def total(self, name: str, **attributes: Any) -> float:
        """The sum of a counter's points (or a histogram's counts) matching `attributes`."""
        found = 0.0
        for attrs, point in self.points(name):
            if all(attrs.get(k) == v for k, v in attributes.items()):
                found += getattr(point, "value", None) or getattr(point, "count", 0)
        return found


def install(sampler: Sampler | None = None, *, tracing: bool = True) -> Otel:
    """Fresh global providers: spans to memory (`tracing`, with `sampler`), metrics to memory."""
    require_package("opentelemetry.sdk", '".[test]" (opentelemetry-sdk)')
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    _reset_globals()
    exporter = InMemorySpanExporter()
    if tracing:
        provider = TracerProvider() if sampler is None else TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return Otel(exporter, reader)


@pytest.fixture
def otel() -> Iterator[Otel]:
    """Global tracer and meter providers exporting to memory, for this test only."""
    try:
        yield install()
    finally:
        _reset_globals()


@pytest.fixture
def otel_installer() -> Iterator[Any]:
    """`install(sampler=..., tracing=...)` for tests that need another set-up."""
    try:
        yield install
    finally:
        _reset_globals()
