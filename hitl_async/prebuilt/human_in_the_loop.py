"""Human review of tool calls: wrap any tool (or all tools of an agent) so that calling it asks
a human first, through `interrupt()`.

Two interrupt schemas, as reviewers' UIs expect them:

- `schema="hitl"` (default), LangChain's human-in-the-loop middleware: the interrupt value is
  `{"action_requests": [{"name", "args", "description"}], "review_configs": [{"action_name",
  "allowed_decisions"}]}` and the answer `{"decisions": [{"type": "approve"} | {"type": "edit",
  "edited_action": {"name", "args"}} | {"type": "reject", "message": "..."}]}`.
- `schema="agent-inbox"`, Agent Inbox's (`hitl_async.prebuilt.interrupt`): the value is
  `[HumanInterrupt]` and the answer `[HumanResponse]` (accept, edit, response, ignore).

An approved or edited call runs the tool; a rejected, answered or ignored one returns an error
`ToolMessage` with the reviewer's words instead. A decision the review does not allow is a
`HumanReviewError` naming the tool and what is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool
from langchain_core.tools import tool as create_tool
from pydantic import BaseModel, create_model
from typing_extensions import TypedDict

from hitl_async.prebuilt.interrupt import ActionRequest as InboxActionRequest
from hitl_async.prebuilt.interrupt import HumanInterrupt, HumanInterruptConfig
from hitl_async.prebuilt.tool_node import injected_arg_names
from hitl_async.prebuilt.tool_output import command_aware
from hitl_async.types import interrupt

__all__ = [
    "Action",
    "ActionRequest",
    "ApproveDecision",
    "Decision",
    "DecisionType",
    "EditDecision",
    "HITLRequest",
    "HITLResponse",
    "HumanReviewError",
    "InterruptOnConfig",
    "RejectDecision",
    "ReviewConfig",
    "human_review",
    "with_human_review",
]

DecisionType = Literal["approve", "edit", "reject"]
_ALL: tuple[DecisionType, ...] = ("approve", "edit", "reject")
DEFAULT_PREFIX = "Tool execution requires approval"


class Action(TypedDict):
    """A tool call as a reviewer sees or edits it."""

    name: str
    args: dict[str, Any]


class ActionRequest(TypedDict):
    """One action under review, with a description for the reviewer."""

    name: str
    args: dict[str, Any]
    description: NotRequired[str]


class ReviewConfig(TypedDict):
    """Which decisions the reviewer may take on an action."""

    action_name: str
    allowed_decisions: list[DecisionType]
    args_schema: NotRequired[dict[str, Any]]


class HITLRequest(TypedDict):
    """The interrupt value: the actions and, for each, what may be decided."""

    action_requests: list[ActionRequest]
    review_configs: list[ReviewConfig]


class ApproveDecision(TypedDict):
    type: Literal["approve"]


class EditDecision(TypedDict):
    type: Literal["edit"]
    edited_action: Action


class RejectDecision(TypedDict):
    type: Literal["reject"]
    message: NotRequired[str]


Decision = ApproveDecision | EditDecision | RejectDecision


class HITLResponse(TypedDict):
    """The answer: one decision per action request, in order."""

    decisions: list[Decision]


class InterruptOnConfig(TypedDict, total=False):
    """Per-tool review settings for `with_human_review(interrupt_on=...)`."""

    allowed_decisions: list[DecisionType]
    description: str | Callable[[str, dict[str, Any]], str]


class HumanReviewError(ValueError):
    """A reviewer's answer that the review does not accept (wrong shape or not allowed)."""


def _describe(
    description: str | Callable[[str, dict[str, Any]], str] | None,
    prefix: str,
    name: str,
    args: dict[str, Any],
) -> str:
    if callable(description):
        return description(name, args)
    if description is not None:
        return description
    return f"{prefix}\n\nTool: {name}\nArgs: {json.dumps(args, default=str)}"


def _rejected(text: str, name: str, call_id: str) -> ToolMessage:
    return ToolMessage(content=text, name=name, tool_call_id=call_id, status="error")


def _ask_hitl(
    name: str, args: dict[str, Any], allowed: Sequence[DecisionType], description: str
) -> tuple[str, Any]:
    """Ask with LangChain's schema; ("run", args) or ("stop", message)."""
    request = HITLRequest(
        action_requests=[ActionRequest(name=name, args=args, description=description)],
        review_configs=[ReviewConfig(action_name=name, allowed_decisions=list(allowed))],
    )
    answer = interrupt(request)
    decisions = answer.get("decisions") if isinstance(answer, Mapping) else None
    if not isinstance(decisions, list) or len(decisions) != 1:
        raise HumanReviewError(
            f"review of tool {name!r}: expected {{'decisions': [<one decision>]}} as the "
            f"answer, got {answer!r:.200}"
        )
    decision = decisions[0]
    kind = decision.get("type") if isinstance(decision, Mapping) else None
    if kind not in allowed:
        raise HumanReviewError(
            f"review of tool {name!r}: decision {kind!r} is not allowed; allowed decisions "
            f"are {list(allowed)}"
        )
    if kind == "approve":
        return "run", args
    if kind == "edit":
        edited = decision.get("edited_action")
        if not isinstance(edited, Mapping) or not isinstance(edited.get("args"), Mapping):
            raise HumanReviewError(
                f"review of tool {name!r}: an edit decision needs "
                "'edited_action': {'name': ..., 'args': {...}}"
            )
        if edited.get("name", name) != name:
            raise HumanReviewError(
                f"review of tool {name!r}: edited_action names tool {edited.get('name')!r}; "
                "an edit may change the arguments, not the tool"
            )
        return "run", dict(edited["args"])
    message = decision.get("message") or f"The user rejected the call to {name}."
    return "stop", message


def _ask_inbox(
    name: str, args: dict[str, Any], allowed: Sequence[DecisionType], description: str
) -> tuple[str, Any]:
    """Ask with Agent Inbox's schema; ("run", args) or ("stop", message)."""
    request = HumanInterrupt(
        action_request=InboxActionRequest(action=name, args=args),
        config=HumanInterruptConfig(
            allow_accept="approve" in allowed,
            allow_edit="edit" in allowed,
            allow_respond="reject" in allowed,
            allow_ignore="reject" in allowed,
        ),
        description=description,
    )
    answer = interrupt([request])
    response = answer[0] if isinstance(answer, list) and answer else answer
    kind = response.get("type") if isinstance(response, Mapping) else None
    permitted = {
        "accept": "approve" in allowed,
        "edit": "edit" in allowed,
        "response": "reject" in allowed,
        "ignore": "reject" in allowed,
    }
    if not permitted.get(str(kind), False):
        allowed_types = [k for k, ok in permitted.items() if ok]
        raise HumanReviewError(
            f"review of tool {name!r}: response type {kind!r} is not allowed; allowed types "
            f"are {allowed_types}"
        )
    if kind == "accept":
        return "run", args
    if kind == "edit":
        edited = response.get("args")
        if not isinstance(edited, Mapping) or not isinstance(edited.get("args"), Mapping):
            raise HumanReviewError(
                f"review of tool {name!r}: an edit response needs 'args': "
                "{'action': ..., 'args': {...}}"
            )
        return "run", dict(edited["args"])
    if kind == "response":
        return "stop", str(response.get("args"))
    return "stop", f"The user ignored the call to {name}."


def human_review(
    tool: BaseTool | Callable[..., Any],
    *,
    allowed_decisions: Sequence[DecisionType] = _ALL,
    description: str | Callable[[str, dict[str, Any]], str] | None = None,
    description_prefix: str = DEFAULT_PREFIX,
    schema: Literal["hitl", "agent-inbox"] = "hitl",
) -> BaseTool:
    """`tool` (a BaseTool or a function) wrapped so that every call first asks a human.

    The wrapped tool has the same name, description and arguments for the model. Needs a
    checkpointer (it pauses with `interrupt()`); see the module docstring for the schemas.
    """
    base = command_aware(tool if isinstance(tool, BaseTool) else create_tool(tool))
    unknown = [d for d in allowed_decisions if d not in _ALL]
    if unknown or not allowed_decisions:
        raise ValueError(f"allowed_decisions must be a non-empty subset of {list(_ALL)}")
    ask = _ask_hitl if schema == "hitl" else _ask_inbox
    if schema not in ("hitl", "agent-inbox"):
        raise ValueError(f"schema must be 'hitl' or 'agent-inbox', got {schema!r}")
    name = base.name
    injected = injected_arg_names(base)  # passed through to the tool, never shown for review

    def review(tool_call_id: str, args: dict[str, Any]) -> tuple[str, Any]:
        """("stop", the rejection message) or ("run", the tool call to make)."""
        shown = {k: v for k, v in args.items() if k not in injected}
        text = _describe(description, description_prefix, name, shown)
        outcome, value = ask(name, shown, allowed_decisions, text)
        if outcome == "stop":
            return outcome, _rejected(value, name, tool_call_id)
        hidden = {k: v for k, v in args.items() if k in injected}
        return outcome, {
            "name": name,
            "args": {**value, **hidden},
            "id": tool_call_id,
            "type": "tool_call",
        }

    def reviewed(tool_call_id: str, **args: Any) -> Any:
        outcome, value = review(tool_call_id, args)
        return value if outcome == "stop" else base.invoke(value)

    async def areviewed(tool_call_id: str, **args: Any) -> Any:
        outcome, value = review(tool_call_id, args)
        return value if outcome == "stop" else await base.ainvoke(value)

    schema_model = base.get_input_schema() if injected else base.tool_call_schema
    if not (isinstance(schema_model, type) and issubclass(schema_model, BaseModel)):
        raise TypeError(
            f"human_review: tool {name!r} has no pydantic argument schema; make it with "
            "@tool or StructuredTool.from_function"
        )
    args_schema = create_model(  # the tool's arguments (injected ones too) plus the call id
        f"{schema_model.__name__}Reviewed",
        __base__=schema_model,
        tool_call_id=(Annotated[str, InjectedToolCallId], ...),
    )
    return StructuredTool(
        name=name,
        description=base.description,
        args_schema=args_schema,
        func=reviewed,
        coroutine=areviewed,
        return_direct=base.return_direct,
    )


def with_human_review(
    tools: Sequence[BaseTool | Callable[..., Any]],
    *,
    interrupt_on: Mapping[str, bool | InterruptOnConfig] | None = None,
    description_prefix: str = DEFAULT_PREFIX,
    schema: Literal["hitl", "agent-inbox"] = "hitl",
) -> list[BaseTool]:
    """The agent's `tools` with human review: every tool, or those `interrupt_on` names
    (`True`: all decisions; a dict: `allowed_decisions` / `description`; `False`: no review),
    as LangChain's `HumanInTheLoopMiddleware(interrupt_on=...)` configures them."""
    out: list[BaseTool] = []
    for item in tools:
        tool = item if isinstance(item, BaseTool) else create_tool(item)
        setting: bool | InterruptOnConfig = (
            True if interrupt_on is None else interrupt_on.get(tool.name, False)
        )
        if setting is False:
            out.append(tool)
            continue
        options: InterruptOnConfig = {} if setting is True else setting
        out.append(
            human_review(
                tool,
                allowed_decisions=options.get("allowed_decisions", _ALL),
                description=options.get("description"),
                description_prefix=description_prefix,
                schema=schema,
            )
        )
    return out
