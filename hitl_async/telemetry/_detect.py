"""Whether OpenTelemetry records in this process, asked once per run.

hitl-async never imports OpenTelemetry by itself: while no module of the API has been imported
(and no provider is named by `OTEL_PYTHON_TRACER_PROVIDER`/`OTEL_PYTHON_METER_PROVIDER`), nobody
can have configured a provider, and the answer is a dictionary lookup. Once the API is imported,
a glance at its global (still None: nothing configured) answers the same in a few attribute
reads; only when one is set are the providers asked, and a configured provider can never be
replaced (the API sets it once), so the tracer and the instruments found are kept for good.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from hitl_async.telemetry._metrics import Instruments

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ["INSTRUMENTATION", "Otel", "current", "reset_for_tests"]

INSTRUMENTATION = "hitl_async"
"""The instrumentation scope name of every span and instrument hitl-async makes."""

_PROVIDER_VARIABLES = ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")


@dataclass(frozen=True, slots=True)
class Otel:
    """What records right now: the tracer (None: no tracer provider is configured) and the
    instruments (None: no meter provider is configured); at least one of them is set."""

    tracer: Tracer | None
    instruments: Instruments | None


class _Found:
    """The state of the detection; module-level on purpose: one process, one set of providers."""

    tracer: Any = None
    instruments: Instruments | None = None
    otel: Otel | None = None
    complete: Otel | None = None
    """Both found: nothing is left to ask."""
    named_by_env: bool | None = None


def _version() -> str:
    try:
        return version("hitl-async")
    except PackageNotFoundError:  # pragma: no cover - a source checkout without metadata
        return "0"


def _named_by_env() -> bool:
    if _Found.named_by_env is None:
        _Found.named_by_env = any(name in os.environ for name in _PROVIDER_VARIABLES)
    return _Found.named_by_env


def _maybe_set(module: Any, variable: str) -> bool:
    """Whether the API module may have a provider: not imported (or its global provider still
    None, the API's own "nothing configured" state) means no, unless the environment names one.
    The global is private to the API: if it is ever renamed, every run asks the public API."""
    if module is None:
        return _named_by_env()
    return getattr(module, variable, True) is not None or _named_by_env()


def _find_tracer() -> Any:
    if not _maybe_set(sys.modules.get("opentelemetry.trace"), "_TRACER_PROVIDER"):
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    return provider.get_tracer(INSTRUMENTATION, _version())


def _find_instruments() -> Instruments | None:
    internal = sys.modules.get("opentelemetry.metrics._internal")
    if not _maybe_set(internal, "_METER_PROVIDER"):
        return None
    try:
        from opentelemetry import metrics
    except ImportError:
        return None
    provider = metrics.get_meter_provider()
    if isinstance(provider, (metrics.NoOpMeterProvider,)) or type(provider).__name__ == (
        "_ProxyMeterProvider"
    ):
        return None
    return Instruments(provider.get_meter(INSTRUMENTATION, _version()))


def current() -> Otel | None:
    """The tracer and instruments to use now, or None when nothing would record them."""
    if _Found.complete is not None:
        return _Found.complete
    modules = sys.modules
    traces = modules.get("opentelemetry.trace")
    meters = modules.get("opentelemetry.metrics._internal")
    if (
        (traces is None or getattr(traces, "_TRACER_PROVIDER", True) is None)
        and (meters is None or getattr(meters, "_METER_PROVIDER", True) is None)
        and _Found.otel is None
        and not _named_by_env()
    ):
        return None  # the common case, inlined: nothing is configured
    return _found()


def _found() -> Otel | None:
    if _Found.tracer is None:
        _Found.tracer = _find_tracer()
    if _Found.instruments is None:
        _Found.instruments = _find_instruments()
    tracer, instruments = _Found.tracer, _Found.instruments
    if tracer is None and instruments is None:
        return None
    otel = _Found.otel
    if otel is None or otel.tracer is not tracer or otel.instruments is not instruments:
        otel = _Found.otel = Otel(tracer, instruments)
    if tracer is not None and instruments is not None:
        _Found.complete = otel
    return otel


def reset_for_tests() -> None:
    """Forget what was found (tests that swap the global providers call it)."""
    _Found.tracer = _Found.instruments = _Found.otel = _Found.complete = None
    _Found.named_by_env = None
