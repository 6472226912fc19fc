"""Agent Inbox's human-review schema, at `langgraph.prebuilt.interrupt`'s names.

A node (or a tool wrapped with `hitl_async.prebuilt.human_review(..., schema="agent-inbox")`)
pauses with `interrupt([HumanInterrupt(...)])`; the answer is a list of one `HumanResponse`.
LangGraph moved these names to `langchain.agents.interrupt`; they keep working here. The newer
schema of LangChain's human-in-the-loop middleware is in `hitl_async.prebuilt.human_in_the_loop`.
"""

from __future__ import annotations

from typing import Any, Literal

from typing_extensions import TypedDict

__all__ = ["ActionRequest", "HumanInterrupt", "HumanInterruptConfig", "HumanResponse"]


class HumanInterruptConfig(TypedDict):
    """What the reviewer may do: ignore the step, respond with text, edit, accept."""

    allow_ignore: bool
    allow_respond: bool
    allow_edit: bool
    allow_accept: bool


class ActionRequest(TypedDict):
    """The action under review: its name (e.g. a tool's) and arguments."""

    action: str
    args: dict[str, Any]


class HumanInterrupt(TypedDict):
    """What `interrupt()` is given: the action, what the reviewer may do, and a description."""

    action_request: ActionRequest
    config: HumanInterruptConfig
    description: str | None


class HumanResponse(TypedDict):
    """The reviewer's answer: `accept` (args None), `ignore` (None), `response` (a str of
    feedback) or `edit` (an `ActionRequest` with the new arguments)."""

    type: Literal["accept", "ignore", "response", "edit"]
    args: str | ActionRequest | None
