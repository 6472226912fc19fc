"""Graph building, mirroring `langgraph.graph` (`from hitl_async.graph import StateGraph`).

`add_messages` and `MessagesState` come from `hitl_async.graph.message` and need langchain-core
(`pip install 'hitl-async[langchain]'`); they are imported on first use, so this package imports
without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hitl_async.constants import END, START
from hitl_async.graph.compiled import CompiledStateGraph
from hitl_async.graph.state import StateGraph

if TYPE_CHECKING:
    from hitl_async.graph.message import MessageGraph, MessagesState, add_messages

__all__ = [
    "END",
    "START",
    "CompiledStateGraph",
    "MessageGraph",
    "MessagesState",
    "StateGraph",
    "add_messages",
]

_MESSAGE_NAMES = frozenset({"MessageGraph", "MessagesState", "add_messages"})


def __getattr__(name: str) -> Any:
    if name in _MESSAGE_NAMES:
        from hitl_async.graph import message

        return getattr(message, name)
    raise AttributeError(f"module 'hitl_async.graph' has no attribute {name!r}")
