"""`ToolRuntime`, as in `langgraph.prebuilt`: what a tool declares a `runtime: ToolRuntime`
parameter to receive from the `ToolNode` that runs it (the graph state, the run's context,
config, store and stream writer, and its tool call's id).

langchain-core hides a parameter annotated with a subclass of its `_DirectlyInjectedToolArg`
from the schema the model sees; subclassing it is how LangGraph's `ToolRuntime` gets the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic

from langchain_core.tools import BaseTool
from typing_extensions import TypeVar

from hitl_async.types import StreamWriter

if TYPE_CHECKING:

    class _DirectlyInjected:
        """langchain-core's marker of an argument injected by its type alone."""

else:
    try:
        from langchain_core.tools.base import _DirectlyInjectedToolArg as _DirectlyInjected
    except ImportError:  # an older langchain-core: the model sees the parameter

        class _DirectlyInjected:
            """Stands in for langchain-core's marker, which this version lacks."""


__all__ = ["ToolRuntime"]

# Both default to Any (LangGraph's: dict and None), so a bare `ToolRuntime` accepts any state and
# context: with None, pydantic warns on every tool call that has a context when langchain-core
# serializes the tool's input.
StateT = TypeVar("StateT", default=Any)
ContextT = TypeVar("ContextT", default=Any)


@dataclass
class ToolRuntime(_DirectlyInjected, Generic[ContextT, StateT]):
    """What a tool with a `runtime: ToolRuntime` parameter is given by the `ToolNode` running
    it; the model never sees the parameter. `state` is the graph state the node was called
    with, `context` the run's `invoke(..., context=...)`, `config` the node's config, `store`
    the graph's store (None without one), `tools` every tool of the node.
    `execution_info` and `server_info` are the running node's (see `hitl_async.Runtime`)."""

    state: StateT
    context: ContextT
    config: dict[str, Any]
    stream_writer: StreamWriter
    tool_call_id: str | None
    store: Any
    tools: list[BaseTool] = field(default_factory=list)
    execution_info: Any = None
    server_info: Any = None

    def emit_output_delta(self, delta: Any) -> None:
        """Does nothing: LangGraph streams `delta` on its `"tools"` stream mode, which
        hitl-async does not have (LangGraph too does nothing when the mode is not streamed)."""
        del delta
