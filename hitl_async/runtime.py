"""`Runtime`: what a node may ask for besides the state, mirroring `langgraph.runtime`.

A node declares a `runtime` parameter to receive it: the run's `context` (passed as
`invoke(..., context=...)` and typed by `StateGraph(..., context_schema=...)`), the store given to
`compile(store=...)`, the stream writer, and the thread id.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from hitl_async._runtime import current_scratchpad, no_writer
from hitl_async.types import StreamWriter

__all__ = ["Runtime", "get_runtime"]

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Runtime(Generic[C]):
    """Run-scoped values a node can use: context, store, stream writer, thread id. Every field
    has a default, so `Runtime(context=...)` builds one, as LangGraph's does."""

    context: C = None  # type: ignore[assignment]
    store: Any = None
    stream_writer: StreamWriter = no_writer
    thread_id: str | None = None
    previous: Any = None

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
        )


def get_runtime(context_schema: type[C] | None = None) -> Runtime[C]:
    """The `Runtime` of the node that is running (also from helpers it calls); `context_schema`
    only types the result, as in LangGraph."""
    pad = current_scratchpad("get_runtime")
    runtime: Runtime[C] = pad.run.runtime_for(pad.writer)
    return runtime
