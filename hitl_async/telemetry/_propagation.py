"""Trace context across processes: a run queued here (`asubmit`, or `hitl serve` taking an HTTP
request) carries the current context in its config, under `TRACE_CONTEXT_KEY`, as the text
carrier of the configured propagator (W3C `traceparent`/`tracestate` by default); the worker
that runs it starts the run's span in that trace. A paused run leaves its span's `traceparent`
with the pause, so the resume, however much later, links to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hitl_async.telemetry._detect import current

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanContext

__all__ = [
    "TRACE_CONTEXT_KEY",
    "context_from_config",
    "span_context_from_traceparent",
    "traceparent",
    "with_trace_context",
]

TRACE_CONTEXT_KEY = "trace_context"
"""The config key (top level, next to `configurable`) holding the trace context a run continues:
a `dict[str, str]` carrier such as `{"traceparent": "00-…-…-01"}`."""


def _carrier(context: Context | None) -> dict[str, str]:
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    return carrier


def with_trace_context(
    config: dict[str, Any], carrier: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """`config` with a trace context for a run that will start in another process: the one in
    `carrier` (e.g. an incoming HTTP request's headers) or else the current one.

    Returns `config` itself when there is nothing to carry (OpenTelemetry not in use, no current
    span), else a copy. `graph.asubmit()` calls it; the HTTP server calls it with the request's
    headers when it queues a run, and the worker's run span then continues the client's trace.
    """
    if carrier is None:
        if current() is None:
            return config
        found = _carrier(None)
    else:
        try:
            from opentelemetry import propagate
        except ImportError:
            return config
        found = _carrier(propagate.extract(dict(carrier.items())))
    if not found:
        return config
    return {**config, TRACE_CONTEXT_KEY: found}


def context_from_config(config: Mapping[str, Any]) -> Context | None:
    """The context a run's span starts in when its config carries one (else None: the current
    context)."""
    carrier = config.get(TRACE_CONTEXT_KEY)
    if not isinstance(carrier, Mapping) or not carrier:
        return None
    from opentelemetry import propagate

    return propagate.extract({str(k): str(v) for k, v in carrier.items()})


def traceparent(span: Span) -> str | None:
    """The W3C `traceparent` of `span` (None for an invalid span)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def span_context_from_traceparent(value: Any) -> SpanContext | None:
    """The (remote) span context a `traceparent` names; None when `value` is not one."""
    from opentelemetry.trace import SpanContext, TraceFlags

    if not isinstance(value, str):
        return None
    parts = value.split("-")
    if len(parts) != 4 or parts[0] != "00" or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    ctx = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return ctx if ctx.is_valid else None
