"""`ToolCallRequest` and the wrapper types of `ToolNode(wrap_tool_call=..., awrap_tool_call=...)`,
as in `langgraph.prebuilt.tool_node`: a wrapper gets each tool call as a request and a function
that runs one, which it may call any number of times (retries), with a changed request
(`request.override(tool_call=...)`), or not at all (answering the call itself).
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool
from typing_extensions import TypedDict

from hitl_async.prebuilt.tool_runtime import ToolRuntime
from hitl_async.types import Command

__all__ = ["AsyncToolCallWrapper", "ToolCallRequest", "ToolCallWithContext", "ToolCallWrapper"]


# The functional form: the key `__type` would be mangled in a class body.
ToolCallWithContext = TypedDict(
    "ToolCallWithContext",
    {"__type": Literal["tool_call_with_context"], "tool_call": ToolCall, "state": Any},
)
"""What `Send("tools", ...)` gives a ToolNode to run one call with the state it was made in
(how `create_react_agent` sends each call)."""


@dataclass
class ToolCallRequest:
    """One tool call on its way to its tool: the call (`name`, `args`, `id`), the tool (None
    when the ToolNode has none of that name: running it then answers with the usual error),
    the graph state and the call's `ToolRuntime`. Change it with `override`."""

    tool_call: ToolCall
    tool: BaseTool | None
    state: Any
    runtime: ToolRuntime[Any, Any]

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:  # set after __init__: LangGraph deprecates it for override
            warnings.warn(
                f"Setting attribute '{name}' on ToolCallRequest is deprecated. Use the "
                "override() method instead to create a new instance with modified values.",
                DeprecationWarning,
                stacklevel=2,
            )
        object.__setattr__(self, name, value)

    def override(self, **overrides: Any) -> ToolCallRequest:
        """A copy with `tool_call` and/or `state` replaced (a new `state` is the runtime's too,
        so `InjectedState` and `ToolRuntime` see the same)."""
        request = replace(self, **overrides)
        if "state" in overrides and isinstance(request.runtime, ToolRuntime):
            object.__setattr__(request, "runtime", replace(request.runtime, state=request.state))
        return request


ToolCallWrapper = Callable[
    [ToolCallRequest, Callable[[ToolCallRequest], ToolMessage | Command[Any]]],
    ToolMessage | Command[Any],
]
"""`wrap_tool_call(request, execute)`: returns the call's `ToolMessage` or `Command`."""

AsyncToolCallWrapper = Callable[
    [ToolCallRequest, Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]]],
    Awaitable[ToolMessage | Command[Any]],
]
"""`awrap_tool_call(request, execute)`, its async form (`execute` is awaited)."""
