"""The spans, events and metrics of one run: `hitl.run` for the run, `hitl.step` per superstep
(of the run and of the subgraphs it runs), `hitl.node <name>` per node task; events on the run's
span for its interrupts, resumes, retries and lease changes.

The run loop calls in at a few points: `trace_run` when a run starts (None while OpenTelemetry
records nothing: the loop then goes its plain way), and on the returned `RunTrace` `start`,
`step`, `node` and `end` around what it awaits anyway, `retry` when a node is retried and
`pause_rows` when a step pauses. Each phase makes its span the current one only while the run
loop awaits it, never across a `yield` of `astream()`, so the caller's context is left as it
was.
"""

from __future__ import annotations

import functools
import sys
import time
import weakref
from collections.abc import Awaitable, Sequence
from contextvars import ContextVar
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from hitl_async._checkpoint import NULL_TASK, write_records
from hitl_async.constants import RESUME, START, TRACE
from hitl_async.errors import GraphBubbleUp
from hitl_async.telemetry._detect import Otel, current
from hitl_async.telemetry._logs import run_fields, set_log_run
from hitl_async.telemetry._propagation import (
    context_from_config,
    span_context_from_traceparent,
    traceparent,
)
from hitl_async.telemetry._store import db_system, error_type, instrument_store, lease_holders

if TYPE_CHECKING:
    from hitl_async._run import Run
    from hitl_async._task import Task
    from hitl_async.checkpoint.base import WriteRecord
    from hitl_async.types import Interrupt

__all__ = ["RunTrace", "inherited_trace", "trace_run"]

_TRACE: ContextVar[RunTrace | None] = ContextVar("hitl_async_run_trace", default=None)


@functools.cache
def _api() -> tuple[ModuleType, ModuleType]:
    """`opentelemetry.trace` and `opentelemetry.context` (imported once something records)."""
    from opentelemetry import context, trace

    return trace, context


def trace_run(run: Run) -> RunTrace | None:
    """Start observing a run (its log records name it from now on); None when OpenTelemetry
    records nothing, which costs the run nothing more."""
    set_log_run(run)
    otel = current()
    if otel is None:
        return None
    return RunTrace(run, otel)


def inherited_trace() -> RunTrace | None:
    """The trace of the run whose node is running in this task: a subgraph run started by the
    node reports its steps and nodes to it."""
    return _TRACE.get()


def _seconds_since(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return max(0.0, time.time() - datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return None


def _failure_kind(exc: BaseException) -> str:
    """How a run that raised `exc` ended: abandoned (the caller stopped reading its stream),
    cancelled, or failed."""
    if isinstance(exc, GeneratorExit):
        return "abandoned"
    import anyio

    try:
        cancelled = anyio.get_cancelled_exc_class()
    except Exception:  # no async library is running (an exception after the loop ended)
        return "failed"
    return "cancelled" if isinstance(exc, cancelled) else "failed"


def _attach(ctx: Any) -> object | None:
    return None if ctx is None else _api()[1].attach(ctx)


def _detach(token: object | None) -> None:
    if token is not None:
        _api()[1].detach(token)


def _record(span: Any, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type(exc))
    if isinstance(exc, Exception):
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


# -- the run's phases ------------------------------------------------------------------------


def _start_span(tracer: Any, graph: str, run: Run) -> tuple[Any, Any]:
    """The run's span and the context holding it (None, None when it is not recorded)."""
    trace, _ = _api()
    parent = context_from_config(run.config)
    attributes: dict[str, Any] = {
        "hitl.graph": graph,
        "hitl.checkpoint_ns": run.ns,
        "hitl.durability": run.durability,
    }
    thread_id, run_id, _ = run_fields(run)
    if thread_id is not None:
        attributes["hitl.thread_id"] = str(thread_id)
    if run_id is not None:
        attributes["hitl.run_id"] = run_id
    if run.at is not None:
        attributes["hitl.checkpoint_id"] = run.at
    if run.saver is not None:
        attributes["db.system"] = db_system(run.saver)
    span = tracer.start_span("hitl.run", context=parent, attributes=attributes)
    if not span.is_recording():
        return None, None
    return span, trace.set_span_in_context(span, parent)


class RunTrace:
    """What is recorded about one run (and the subgraph runs its nodes start)."""

    __slots__ = (
        "__weakref__",
        "context",
        "ended",
        "error",
        "graph",
        "instruments",
        "owner",
        "root",
        "span",
        "tracer",
    )

    def __init__(self, run: Run, otel: Otel) -> None:
        self.root: weakref.ref[Run] = weakref.ref(run)
        self.tracer: Any = otel.tracer
        self.instruments = otel.instruments
        self.graph = run.graph.name
        self.error: BaseException | None = None
        self.ended = False
        self.owner: str | None = None
        if run.saver is not None:
            instrument_store(run.saver)
        if self.instruments is not None:
            self.instruments.runs_started.add(1, {"hitl.graph": self.graph})
        self.span: Any = None
        """The run's recording span (None: no tracer, or the sampler dropped the trace)."""
        self.context: Any = None
        """The OpenTelemetry context holding the run's span."""
        if self.tracer is not None:
            self.span, self.context = _start_span(self.tracer, self.graph, run)
        if self.span is not None and run.coordinated:
            self.owner = run.lease.owner
            lease_holders[self.owner] = self

    def _is_root(self, run: Run) -> bool:
        return self.root() is run

    def event(self, name: str, attributes: dict[str, Any]) -> None:
        """An event on the run's span (lease changes come from the store's tracing wrapper)."""
        if self.span is not None and not self.ended:
            self.span.add_event(name, attributes)

    async def start(self, work: Awaitable[None], input: Any) -> None:
        """Claim, load and apply the input inside the run's span; then note the resume."""
        token = _attach(self.context)
        try:
            await work
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            _detach(token)
        run = self.root()
        if run is None:
            return
        if self.span is not None:
            self.span.set_attribute("hitl.checkpoint_id", run.cp.checkpoint_id or "")
            self._link_to_pause(run)
        if getattr(input, "resume", None) is not None:
            self._resumed(run)

    def _link_to_pause(self, run: Run) -> None:
        """Link to the span of the run that paused the thread where this one continues."""
        for _, channel, value in run.cp.writes.get(NULL_TASK, ()):
            if channel == TRACE:
                paused = span_context_from_traceparent(value)
                if paused is not None:
                    self.span.add_link(paused, {"hitl.link": "paused_run"})

    def _resumed(self, run: Run) -> None:
        """An event and the human's waiting time for each interrupt this run answers."""
        for task, intr in _answered_now(run):
            waited = _seconds_since(intr.created_at)
            attributes: dict[str, Any] = {"hitl.interrupt_id": intr.id, "hitl.node": task.name}
            if waited is not None:
                attributes["hitl.interrupt.wait_s"] = waited
                if self.instruments is not None:
                    self.instruments.interrupt_wait.record(
                        waited, {"hitl.graph": self.graph, "hitl.node": task.name}
                    )
            self.event("hitl.resume", attributes)

    async def step(self, run: Run, work: Awaitable[bool]) -> bool:
        """One superstep (of the run or of a subgraph run) as a `hitl.step` span."""
        if not run.tasks:
            return await work  # nothing to run: the loop only learns that it is over
        step = run.cp.step + 1
        span = None
        token = None
        if self.span is not None:
            trace, _ = _api()
            parent = self.context if self._is_root(run) else None  # a subgraph: the node's
            attributes: dict[str, Any] = {
                "hitl.graph": run.graph.name,
                "hitl.step": step,
                "hitl.checkpoint_ns": run.ns,
                "hitl.checkpoint_id": run.cp.checkpoint_id or "",
                "hitl.step.tasks": len(run.tasks),
            }
            if run.thread_id is not None:
                attributes["hitl.thread_id"] = str(run.thread_id)
            span = self.tracer.start_span("hitl.step", context=parent, attributes=attributes)
            token = _attach(trace.set_span_in_context(span, parent))
        try:
            more = await work
        except BaseException as exc:
            if not isinstance(exc, GraphBubbleUp):  # a subgraph's Command(graph=PARENT): no error
                if span is not None:
                    _record(span, exc)
                if self._is_root(run):
                    self.error = exc
            raise
        else:
            if not more and run.interrupts:
                self._paused(run, span)
        finally:
            _detach(token)
            if span is not None:
                span.end()
            if self.instruments is not None:
                self.instruments.steps.add(1, {"hitl.graph": run.graph.name})
        return more

    def _paused(self, run: Run, span: Any) -> None:
        nodes = {i.id: t.name for t, i in run.pending()}
        for intr in run.interrupts:
            attributes = {"hitl.interrupt_id": intr.id, "hitl.node": nodes.get(intr.id, "")}
            if span is not None:
                span.add_event("hitl.interrupt", attributes)
            if self._is_root(run):
                self.event("hitl.interrupt", attributes)

    async def node(self, run: Run, task: Task, work: Awaitable[None]) -> None:
        """One node task as a `hitl.node <name>` span, and its duration."""
        if task.name == START:
            return await work
        inherit = _TRACE.set(self)
        span = None
        token = None
        if self.span is not None:
            trace, _ = _api()
            attributes: dict[str, Any] = {
                "hitl.graph": run.graph.name,
                "hitl.node": task.name,
                "hitl.step": run.cp.step + 1,
                "hitl.checkpoint_ns": run.ns,
                "hitl.task_id": task.id,
            }
            if run.thread_id is not None:
                attributes["hitl.thread_id"] = str(run.thread_id)
            span = self.tracer.start_span(f"hitl.node {task.name}", attributes=attributes)
            token = _attach(trace.set_span_in_context(span))
        started = time.perf_counter()
        outcome = "failed"
        try:
            await work
            outcome = self._node_outcome(task, span)
        except BaseException as exc:
            if span is not None:
                _record(span, exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            _detach(token)
            _TRACE.reset(inherit)
            if span is not None:
                span.set_attribute("hitl.node.outcome", outcome)
                span.end()
            if self.instruments is not None:
                self.instruments.node_duration.record(
                    elapsed,
                    {
                        "hitl.graph": run.graph.name,
                        "hitl.node": task.name,
                        "hitl.node.outcome": outcome,
                    },
                )

    def _node_outcome(self, task: Task, span: Any) -> str:
        if task.raised is not None and not task.done:
            if span is not None:
                for intr in task.raised:
                    span.add_event("hitl.interrupt", {"hitl.interrupt_id": intr.id})
            return "interrupted"
        error = task.error
        if error is None or isinstance(error, GraphBubbleUp):
            return "done"
        if span is not None:
            _record(span, error)
        return "failed"

    def retry(self, task: Task, exc: BaseException, attempt: int, delay: float) -> None:
        """A node failed and will run again after `delay` seconds (its retry policy)."""
        attributes: dict[str, Any] = {
            "hitl.node": task.name,
            "hitl.attempt": attempt,
            "hitl.retry.delay_s": delay,
            "error.type": error_type(exc),
            "exception.message": str(exc),
        }
        self.event("hitl.retry", attributes)
        if self.span is not None:
            node_span = _api()[0].get_current_span()
            if node_span is not self.span and node_span.is_recording():
                node_span.add_event("hitl.retry", attributes)

    def pause_rows(self, run: Run, tasks: Sequence[Task]) -> list[WriteRecord]:
        """What a pausing step stores for the resume to link to this run's span: one pending
        write (`TRACE`, the span's traceparent) of the null task, next to the interrupts."""
        if self.span is None or not self._is_root(run) or not any(t.raised for t in tasks):
            return []
        value = traceparent(self.span)
        return [] if value is None else write_records(NULL_TASK, [(TRACE, value)], run.serde)

    async def end(self, run: Run, work: Awaitable[None], *, abandoned: bool = False) -> None:
        """The run's last writes (and its lease's release) inside its span; then end it."""
        if not self._is_root(run):
            return await work
        token = _attach(self.context)
        failure: BaseException | None = None
        try:
            await work
        except BaseException as exc:
            failure = exc
            raise
        finally:
            _detach(token)
            if failure is None and abandoned:
                failure = sys.exc_info()[1]  # what made the caller abandon the run, if anything
            self._close(run, self.error or failure, abandoned)

    def _close(self, run: Run, failure: BaseException | None, abandoned: bool) -> None:
        if self.ended:
            return
        self.ended = True
        if self.owner is not None:
            lease_holders.pop(self.owner, None)
        if failure is not None:
            outcome = _failure_kind(failure)
        elif abandoned:
            outcome = "abandoned"
        else:
            outcome = "paused" if any(not t.done for t in run.tasks) else "completed"
        span = self.span
        if span is not None:
            span.set_attribute("hitl.run.outcome", outcome)
            span.set_attribute("hitl.checkpoint_id", run.cp.checkpoint_id or "")
            span.set_attribute("hitl.steps", run.steps_run)
            if outcome == "failed" and failure is not None:
                _record(span, failure)
            span.end()
        instruments = self.instruments
        if instruments is not None:
            if outcome == "failed" and failure is not None:
                instruments.runs_failed.add(
                    1, {"hitl.graph": self.graph, "error.type": error_type(failure)}
                )
            else:
                instruments.runs_finished.add(
                    1, {"hitl.graph": self.graph, "hitl.run.outcome": outcome}
                )


def _answered_now(run: Run) -> list[tuple[Task, Interrupt]]:
    """The interrupts answered by this run's input (not by an earlier, stored resume)."""
    out: list[tuple[Task, Interrupt]] = []
    for task in run.tasks:
        if not task.answers or not task.raised:
            continue
        stored: set[str] = set()
        for _, channel, value in run.cp.writes.get(task.id, ()):
            if channel == RESUME:
                stored.update(str(pair[0]) for pair in value)
        out += [(task, i) for i in task.raised if i.id in task.answers and i.id not in stored]
    return out
