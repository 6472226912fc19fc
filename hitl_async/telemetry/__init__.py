"""OpenTelemetry traces and metrics, and structured logs, for hitl-async.

Install the extra (`pip install "hitl-async[otel]"`) and configure OpenTelemetry as usual (a
tracer provider, a meter provider, or both): hitl-async then emits, with no code change, a span
per run (`hitl.run`), per superstep (`hitl.step`), per node task (`hitl.node <name>`) and per
store call (`hitl.store.<op>`), events on the run's span for interrupts, resumes, retries, lease
changes and fencing refusals, and the metrics listed in `METRICS`. With no provider configured
(or without OpenTelemetry at all) nothing is built and nothing is imported.

A run queued with `graph.asubmit()` carries the caller's trace context, so the worker's run
continues that trace; a resume links to the span of the run that paused. An HTTP server that
queues runs itself passes the request's context with `with_trace_context(config, headers)`.

Every record of hitl-async's loggers (`get_logger`) carries `thread_id`, `run_id` and
`checkpoint_id` (`RunContextFilter` adds them to a handler's records).
"""

from __future__ import annotations

from hitl_async.telemetry._detect import INSTRUMENTATION
from hitl_async.telemetry._logs import (
    LOG_FIELDS,
    RunContextFilter,
    end_log_run,
    get_logger,
    store_outage,
)
from hitl_async.telemetry._metrics import METRICS
from hitl_async.telemetry._propagation import TRACE_CONTEXT_KEY, with_trace_context
from hitl_async.telemetry._run import RunTrace, inherited_trace, trace_run
from hitl_async.telemetry._store import instrument_store

__all__ = [
    "INSTRUMENTATION",
    "LOG_FIELDS",
    "METRICS",
    "TRACE_CONTEXT_KEY",
    "RunContextFilter",
    "RunTrace",
    "end_log_run",
    "get_logger",
    "inherited_trace",
    "instrument_store",
    "store_outage",
    "trace_run",
    "with_trace_context",
]
