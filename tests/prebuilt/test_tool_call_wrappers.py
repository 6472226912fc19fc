"""`ToolNode(wrap_tool_call=..., awrap_tool_call=...)` and `ToolCallRequest`: the graph cases
are compared with LangGraph 1.2.22 in `test_tool_node.py`'s golden file; these call the node
directly (its sync path) and check the request's own rules."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import tool

from hitl_async.prebuilt import ToolCallRequest, ToolNode, ToolRuntime


@tool
def shout(text: str, runtime: ToolRuntime) -> str:
    """Shouts the text, with the state's note."""
    return f"{text.upper()} {runtime.state.get('note')}"


def ask(*texts: str) -> dict[str, Any]:
    calls = [{"name": "shout", "args": {"text": t}, "id": f"c{i}"} for i, t in enumerate(texts)]
    return {"messages": [AIMessage("", tool_calls=calls)], "note": "n"}


def test_the_sync_path_runs_the_wrapper_around_each_call() -> None:
    seen: list[str] = []

    def twice(request: ToolCallRequest, execute: Any) -> Any:
        seen.append(request.tool_call["id"])
        first = execute(request)
        again = execute(request.override(state={"note": "second"}))
        return ToolMessage(f"{first.content} / {again.content}", tool_call_id=first.tool_call_id)

    out = ToolNode([shout], wrap_tool_call=twice).invoke(ask("a", "b"))
    assert sorted(seen) == ["c0", "c1"]
    assert [m.content for m in out["messages"]] == ["A n / A second", "B n / B second"]


def test_override_copies_and_keeps_state_and_runtime_together() -> None:
    runtime = ToolRuntime(
        state={"note": "old"},
        context=None,
        config={},
        stream_writer=print,
        tool_call_id="c",
        store=None,
    )
    request = ToolCallRequest(
        {"name": "shout", "args": {}, "id": "c"}, shout, runtime.state, runtime
    )
    changed = request.override(state={"note": "new"})
    assert changed.state == changed.runtime.state == {"note": "new"}
    assert request.state == request.runtime.state == {"note": "old"}  # the original is kept
    with pytest.warns(DeprecationWarning, match="Use the override"):
        request.state = {}


def test_a_send_of_a_tool_call_with_its_context() -> None:
    """`ToolCallWithContext` (as `create_react_agent` sends each call): the call runs with the
    state it carries, which the ToolNode's runtime shows."""
    from hitl_async.graph import START, MessagesState, StateGraph
    from hitl_async.prebuilt.tool_node import ToolCallWithContext
    from hitl_async.types import Send

    def fan_out(state: MessagesState) -> list[Send]:
        calls = state["messages"][-1].tool_calls
        payloads = [
            ToolCallWithContext(
                __type="tool_call_with_context", tool_call=c, state={"note": c["id"]}
            )
            for c in calls
        ]
        return [Send("tools", p) for p in payloads]

    builder = StateGraph(MessagesState)
    builder.add_node("tools", ToolNode([shout]))
    builder.add_conditional_edges(START, fan_out, ["tools"])
    question = ask("x", "y")
    del question["note"]
    out = builder.compile().invoke(question)
    assert sorted(m.content for m in out["messages"][1:]) == ["X c0", "Y c1"]
