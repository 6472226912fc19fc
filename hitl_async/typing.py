"""The type variables of `langgraph.typing`, so generic code written against LangGraph's
(`class MyNode(Generic[StateT, ContextT])`, `ToolRuntime[ContextT, StateT]`) ports by renaming
its import.

LangGraph bounds the state variables by its `StateLike` (a TypedDict, dataclass or pydantic
model); these are unbounded, since the engine accepts a state of any type (a root value too).
`ContextT` defaults to None, `InputT` and `OutputT` to `StateT`, as in LangGraph.
"""

from __future__ import annotations

from typing_extensions import TypeVar

__all__ = (
    "ContextT",
    "ContextT_contra",
    "InputT",
    "NodeInputT",
    "NodeInputT_contra",
    "OutputT",
    "StateT",
    "StateT_co",
    "StateT_contra",
)

StateT = TypeVar("StateT")
"""The state of a graph."""

StateT_co = TypeVar("StateT_co", covariant=True)

StateT_contra = TypeVar("StateT_contra", contravariant=True)

ContextT = TypeVar("ContextT", default=None)
"""The run-scoped context of a graph (`invoke(..., context=...)`); defaults to None."""

ContextT_contra = TypeVar("ContextT_contra", contravariant=True, default=None)

InputT = TypeVar("InputT", default=StateT)
"""The input of a graph; defaults to `StateT`."""

OutputT = TypeVar("OutputT", default=StateT)
"""The output of a graph; defaults to `StateT`."""

NodeInputT = TypeVar("NodeInputT")
"""The input of a node."""

NodeInputT_contra = TypeVar("NodeInputT_contra", contravariant=True)
