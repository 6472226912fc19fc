"""Prebuilt agents and tool nodes, mirroring `langgraph.prebuilt`
(`from hitl_async.prebuilt import create_react_agent, ToolNode, tools_condition`).

Needs langchain-core (`pip install 'hitl-async[langchain]'`). Beyond LangGraph's names:
`human_review` / `with_human_review` wrap tools so that calling one asks a human first
(`hitl_async.prebuilt.human_in_the_loop`).
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the package
    raise ImportError(
        "hitl_async.prebuilt needs langchain-core; install it with: "
        "pip install 'hitl-async[langchain]'"
    ) from exc

from hitl_async.prebuilt.chat_agent_executor import (
    AgentState,
    AgentStatePydantic,
    AgentStateWithStructuredResponse,
    AgentStateWithStructuredResponsePydantic,
    create_react_agent,
    create_tool_calling_executor,
)
from hitl_async.prebuilt.human_in_the_loop import (
    HITLRequest,
    HITLResponse,
    HumanReviewError,
    human_review,
    with_human_review,
)
from hitl_async.prebuilt.interrupt import (
    ActionRequest,
    HumanInterrupt,
    HumanInterruptConfig,
    HumanResponse,
)
from hitl_async.prebuilt.tool_call_request import ToolCallRequest
from hitl_async.prebuilt.tool_node import (
    InjectedState,
    InjectedStore,
    InjectedToolCallId,
    ToolInvocationError,
    ToolNode,
    tools_condition,
)
from hitl_async.prebuilt.tool_runtime import ToolRuntime
from hitl_async.prebuilt.tool_validator import ValidationNode

__all__ = [
    "ActionRequest",
    "AgentState",
    "AgentStatePydantic",
    "AgentStateWithStructuredResponse",
    "AgentStateWithStructuredResponsePydantic",
    "HITLRequest",
    "HITLResponse",
    "HumanInterrupt",
    "HumanInterruptConfig",
    "HumanResponse",
    "HumanReviewError",
    "InjectedState",
    "InjectedStore",
    "InjectedToolCallId",
    "ToolCallRequest",
    "ToolInvocationError",
    "ToolNode",
    "ToolRuntime",
    "ValidationNode",
    "create_react_agent",
    "create_tool_calling_executor",
    "human_review",
    "tools_condition",
    "with_human_review",
]
