"""Store calls as spans and metrics: `instrument_store(saver)` wraps the saver's coroutine
methods on the instance (the class and the driver's code stay untouched, and `isinstance`
checks still hold). Each call records its latency by operation and store (the semantic
conventions' `db.client.operation.duration`) and, inside a traced run, is a client span
`hitl.store.<op>`; lease, fencing and queue outcomes become events on the run's span and metrics.

A call outside any recording span (a worker polling its queue, the lease keeper's renewals) makes
no span of its own, so an idle worker does not emit a trace per poll.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hitl_async.errors import LeaseLostError, ThreadBusyError
from hitl_async.telemetry._detect import Otel, current

if TYPE_CHECKING:
    from hitl_async.telemetry._run import RunTrace

__all__ = ["OPERATIONS", "db_system", "error_type", "instrument_store", "lease_holders"]

OPERATIONS = (
    "setup",
    "commit",
    "commit_many",
    "put_writes",
    "load",
    "history",
    "delete_thread",
    "prune",
    "list_threads",
    "acquire_lease",
    "acquire_and_load",
    "renew_lease",
    "release_lease",
    "expired_leases",
    "list_inbox",
    "enqueue",
    "claim_request",
    "renew_claim",
    "finish_request",
    "get_request",
)
"""The saver methods that are traced (the change-notification waits are not: they block for
as long as nothing happens)."""

_MARK = "_hitl_async_instrumented"

_SYSTEMS = {
    "hitl_async_sqlite": "sqlite",
    "hitl_async_postgres": "postgresql",
    "hitl_async_redis": "redis",
    "hitl_async": "memory",
}

lease_holders: weakref.WeakValueDictionary[str, RunTrace] = weakref.WeakValueDictionary()
"""The traced run holding each lease owner name (`ThreadLease.owner`): lease events go to its
span, whichever task or thread made the call (the lease keeper renews from a thread)."""

_WRITES = frozenset({"commit", "commit_many", "put_writes"})


def db_system(saver: object) -> str:
    """The `db.system` of a saver: its class's `db_system` if it declares one, else the store
    its driver package is for (sqlite, postgresql, redis, memory), else its package name."""
    declared = getattr(type(saver), "db_system", None)
    if isinstance(declared, str):
        return declared
    package = type(saver).__module__.split(".", 1)[0]
    return _SYSTEMS.get(package, package)


def instrument_store(saver: Any) -> Any:
    """Trace `saver`'s calls from now on (idempotent; returns `saver`). Done by hitl-async
    itself for the savers of traced runs, workers and `asubmit`; a no-op while OpenTelemetry
    records nothing, and for objects without an instance dictionary."""
    attrs = getattr(saver, "__dict__", None)
    if attrs is None or _MARK in attrs or current() is None:
        return saver
    system = db_system(saver)
    for op in OPERATIONS:
        method = getattr(saver, op, None)
        if method is not None and _is_coroutine_method(method):
            attrs[op] = _traced(op, method, system)
    attrs[_MARK] = True
    return saver


def _is_coroutine_method(method: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(method)


_THREAD_FIRST = frozenset(
    {"load", "history", "delete_thread", "prune", "put_writes", "acquire_lease", "acquire_and_load"}
)


def _thread_of(op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The thread a call is about, when its arguments say."""
    first = args[0] if args else kwargs.get("thread_id")
    if op in _THREAD_FIRST:
        return first if isinstance(first, str) else None
    if op == "commit_many" and first:
        first = first[0].record
    elif op == "commit" and first is None:
        first = kwargs.get("record")
    thread = getattr(first, "thread_id", None)  # a record, a lease, a run request
    return thread if isinstance(thread, str) else None


def _traced(
    op: str, method: Callable[..., Coroutine[Any, Any, Any]], system: str
) -> Callable[..., Coroutine[Any, Any, Any]]:
    name = f"hitl.store.{op}"
    base = {"db.system": system, "db.system.name": system, "db.operation.name": op}

    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        otel = current()
        if otel is None:
            return await method(*args, **kwargs)
        span = _start_span(otel, name, op, base, args, kwargs)
        started = time.perf_counter()
        try:
            if span is None:
                result = await method(*args, **kwargs)
            else:
                from opentelemetry.trace import use_span

                with use_span(span, record_exception=False, set_status_on_exception=False):
                    result = await method(*args, **kwargs)
        except BaseException as exc:
            _failed(otel, span, op, base, exc, started, args, kwargs)
            raise
        _succeeded(otel, span, op, base, result, started, args, kwargs)
        return result

    return call


def _start_span(
    otel: Otel,
    name: str,
    op: str,
    base: dict[str, str],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    tracer = otel.tracer
    if tracer is None:
        return None
    from opentelemetry.trace import SpanKind, get_current_span

    if not get_current_span().is_recording():
        return None
    attributes: dict[str, Any] = dict(base)
    thread = _thread_of(op, args, kwargs)
    if thread is not None:
        attributes["hitl.thread_id"] = thread
    if op == "commit" and args:
        attributes["hitl.checkpoint_id"] = getattr(args[0], "checkpoint_id", "")
    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def _holder(owner: Any) -> RunTrace | None:
    return lease_holders.get(owner) if isinstance(owner, str) else None


def _succeeded(
    otel: Otel,
    span: Any,
    op: str,
    base: dict[str, str],
    result: Any,
    started: float,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    elapsed = time.perf_counter() - started
    if span is not None:
        span.end()
    instruments = otel.instruments
    if instruments is not None:
        instruments.store_duration.record(elapsed, base)
    if op in ("acquire_lease", "acquire_and_load"):
        lease = result[0] if op == "acquire_and_load" else result
        holder = _holder(getattr(lease, "owner", None))
        if holder is not None:
            holder.event("hitl.lease.acquire", {"hitl.lease.token": int(lease.token)})
    elif op in ("renew_lease", "release_lease"):
        holder = _holder(getattr(args[0] if args else None, "owner", None))
        if holder is not None:
            holder.event("hitl.lease.renew" if op == "renew_lease" else "hitl.lease.release", {})
    elif instruments is not None:
        _queue_metrics(instruments, op, result, args, kwargs)


_QUEUES: dict[str, str] = {}
"""The queue of requests this process queued or claimed, by id (the newest 4096): a request
given back or cancelled is counted in the depth of its own queue."""
_QUEUES_KEPT = 4096


def _remember_queue(request_id: str, queue: str) -> None:
    _QUEUES[request_id] = queue
    if len(_QUEUES) > _QUEUES_KEPT:
        del _QUEUES[next(iter(_QUEUES))]


def _queue_metrics(
    instruments: Any, op: str, result: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Queue depth (requests queued, minus those first claimed or cancelled, plus those given
    back) and claim latency (enqueue to first claim)."""
    if op == "enqueue":
        request = args[0] if args else kwargs.get("request")
        name = str(getattr(request, "queue", ""))
        _remember_queue(str(getattr(request, "id", "")), name)
        instruments.queue_depth.add(1, {"hitl.queue": name})
    elif op == "claim_request" and result is not None:
        _remember_queue(result.id, result.queue)
        if result.attempts != 1:
            return  # taken over from a worker that died: it was counted out when first claimed
        labels = {"hitl.queue": str(result.queue)}
        instruments.queue_depth.add(-1, labels)
        try:
            created = datetime.fromisoformat(result.created_at).timestamp()
        except (TypeError, ValueError):
            return
        instruments.claim_latency.record(max(0.0, time.time() - created), labels)
    elif op == "finish_request" and result is True:
        request_id = args[0] if args else kwargs.get("request_id")
        status = args[2] if len(args) > 2 else kwargs.get("status")
        owner = args[1] if len(args) > 1 else kwargs.get("owner")
        labels = {"hitl.queue": _QUEUES.get(str(request_id), "")}
        if status == "queued":
            instruments.queue_depth.add(1, labels)
        elif status == "cancelled" and owner is None:
            instruments.queue_depth.add(-1, labels)


def _failed(
    otel: Otel,
    span: Any,
    op: str,
    base: dict[str, str],
    exc: BaseException,
    started: float,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    elapsed = time.perf_counter() - started
    kind = error_type(exc)
    if span is not None:
        from opentelemetry.trace import Status, StatusCode

        span.set_attribute("error.type", kind)
        if isinstance(exc, Exception):
            span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()
    instruments = otel.instruments
    if instruments is not None:
        instruments.store_duration.record(elapsed, {**base, "error.type": kind})
    if isinstance(exc, LeaseLostError):
        lease = args[0] if op == "renew_lease" and args else kwargs.get("lease")
        loss = "renew" if op == "renew_lease" else "fencing" if op in _WRITES else op
        if instruments is not None:
            instruments.lease_lost.add(1, {"hitl.lease.loss": loss})
        holder = _holder(getattr(lease, "owner", None))
        if holder is not None:
            event = "hitl.lease.lost" if loss == "renew" else "hitl.fencing.refused"
            holder.event(event, {"hitl.store.operation": op, "exception.message": str(exc)})
    elif isinstance(exc, ThreadBusyError) and op in ("acquire_lease", "acquire_and_load"):
        owner = args[1] if len(args) > 1 else kwargs.get("owner")
        holder = _holder(owner)
        if holder is not None:
            holder.event("hitl.lease.busy", {"exception.message": str(exc)})


def error_type(exc: BaseException) -> str:
    """`error.type`: the exception's fully qualified class name."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
