"""`Runtime`: what a node may ask for besides the state, mirroring `langgraph.runtime`.

A node declares a `runtime` parameter to receive it: the run's `context` (passed as
`invoke(..., context=...)` and typed by `StateGraph(..., context_schema=...)`), the store given to
`compile(store=...)`, the stream writer, and the thread id; `heartbeat()` refreshes the node's
`idle_timeout`, and `control` is the run's `RunControl` (cooperative draining).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from hitl_async._runtime import current_scratchpad, no_heartbeat, no_writer
from hitl_async.types import StreamWriter

__all__ = ["RunControl", "Runtime", "get_runtime"]

C = TypeVar("C")


class RunControl:
    """Asks a run to stop at its next superstep boundary (`request_drain()`, say on SIGTERM):
    the run saves its checkpoint and raises `GraphDrained`; `invoke(None, config)` continues
    it. Pass one as `invoke(..., control=...)`; a node sees its run's as `runtime.control`.
    One per run (a drained control stays drained); safe to call from any thread."""

    __slots__ = ("_drain_reason",)

    def __init__(self) -> None:
        self._drain_reason: str | None = None

    def request_drain(self, reason: str = "shutdown") -> None:
        """Stop the run before its next superstep; `reason` is `GraphDrained.reason`."""
        self._drain_reason = reason

    @property
    def drain_requested(self) -> bool:
        return self._drain_reason is not None

    @property
    def drain_reason(self) -> str | None:
        return self._drain_reason


@dataclass(frozen=True, slots=True)
class Runtime(Generic[C]):
    """Run-scoped values a node can use: context, store, stream writer, thread id. Every field
    has a default, so `Runtime(context=...)` builds one, as LangGraph's does."""

    context: C = None  # type: ignore[assignment]
    store: Any = None
    stream_writer: StreamWriter = no_writer
    thread_id: str | None = None
    previous: Any = None
    heartbeat: Callable[[], None] = no_heartbeat
    """Record progress for the node's `idle_timeout` (a no-op when it has none)."""
    control: RunControl | None = None
    """The run's `RunControl` (None outside a run)."""

    @property
    def drain_requested(self) -> bool:
        return self.control.drain_requested if self.control is not None else False

    @property
    def drain_reason(self) -> str | None:
        return self.control.drain_reason if self.control is not None else None

    def override(self, **changes: Any) -> Runtime[C]:
        """A copy with `changes` (field=value) applied."""
        return replace(self, **changes)

    def merge(self, other: Runtime[C]) -> Runtime[C]:
        """`other` over this one: each of its fields that is set (not None, not the default
        writer) wins, as LangGraph's `Runtime.merge`."""
        return Runtime(
            context=other.context or self.context,
            store=other.store or self.store,
            stream_writer=(
                other.stream_writer if other.stream_writer is not no_writer else self.stream_writer
            ),
            thread_id=other.thread_id or self.thread_id,
            previous=self.previous if other.previous is None else other.previous,
            heartbeat=(other.heartbeat if other.heartbeat is not no_heartbeat else self.heartbeat),
            control=other.control or self.control,
        )


def get_runtime(context_schema: type[C] | None = None) -> Runtime[C]:
    """The `Runtime` of the node that is running (also from helpers it calls); `context_schema`
    only types the result, as in LangGraph."""
    pad = current_scratchpad("get_runtime")
    runtime: Runtime[C] = pad.run.runtime_for(pad.writer, pad.heartbeat)
    return runtime
