"""`Runtime`: what a node may ask for besides the state, mirroring `langgraph.runtime`.

A node declares a `runtime` parameter to receive it: the run's `context` (passed as
`invoke(..., context=...)` and typed by `StateGraph(..., context_schema=...)`), the store given to
`compile(store=...)`, the stream writer, and the thread id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hitl_async._runtime import current_scratchpad
from hitl_async.types import StreamWriter

__all__ = ["Runtime", "get_runtime"]

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Runtime(Generic[C]):
    """Run-scoped values a node can use: context, store, stream writer, thread id."""

    context: C
    store: Any
    stream_writer: StreamWriter
    thread_id: str | None = None
    previous: Any = None


def get_runtime(context_schema: type[C] | None = None) -> Runtime[C]:
    """The `Runtime` of the node that is running (also from helpers it calls); `context_schema`
    only types the result, as in LangGraph."""
    pad = current_scratchpad("get_runtime")
    runtime: Runtime[C] = pad.run.runtime_for(pad.writer)
    return runtime
