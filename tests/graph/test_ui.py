"""Generative-UI messages (`hitl_async.graph.ui`), mirroring `langgraph.graph.ui`: the same
streams and states as LangGraph 1.2.22 on the same graphs (golden file), and what LangGraph's
tests do not show: UI state kept in a durable thread across a pause, a retried node's pushes
counted once, a tool pushing from a `ToolNode`, and the call outside a graph."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, AnyMessage
from typing_extensions import TypedDict
from ui_cases import run_all

from hitl_async import Command, RetryPolicy, interrupt
from hitl_async._schema import UnknownStateKeyWarning
from hitl_async.graph import START, StateGraph, add_messages
from hitl_async.graph import ui as ui_module
from hitl_async.graph.ui import (
    AnyUIMessage,
    delete_ui_message,
    push_ui_message,
    ui_message_reducer,
)

GOLDEN = Path(__file__).parent / "golden" / "ui.json"


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    ui: Annotated[list[AnyUIMessage], ui_message_reducer]


def test_same_streams_and_states_as_langgraph_on_the_same_graphs() -> None:
    golden = json.loads(GOLDEN.read_text())["results"]
    names = dict(StateGraph=StateGraph, START=START, add_messages=add_messages)
    names.update({n: getattr(ui_module, n) for n in ui_module.__all__})
    with warnings.catch_warnings():  # "state without a ui key" drops its writes, and says so
        warnings.simplefilter("ignore", UnknownStateKeyWarning)
        ours = run_all(names)
    assert set(ours) == set(golden)
    for name, expected in golden.items():
        assert ours[name] == expected, name


@pytest.mark.anyio
async def test_ui_state_survives_a_pause_on_a_durable_thread(saver: Any) -> None:
    def show(state: State) -> dict[str, Any]:
        push_ui_message("form", {"step": 1}, id="f")
        return {}

    def ask(state: State) -> dict[str, Any]:
        answer = interrupt("fill the form")
        push_ui_message("form", {"answer": answer}, id="f", merge=True)
        return {"messages": [AIMessage(f"got {answer}", id="a")]}

    def clear(state: State) -> dict[str, Any]:
        delete_ui_message("f")
        return {}

    builder = StateGraph(State)
    for fn in (show, ask, clear):
        builder.add_node(fn.__name__, fn)
    builder.add_edge(START, "show")
    builder.add_edge("show", "ask")
    builder.add_edge("ask", "clear")
    graph = builder.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "ui"}}
    await graph.ainvoke({"messages": []}, cfg)
    paused = await graph.aget_state(cfg)
    assert [(m["id"], m["props"]) for m in paused.values["ui"]] == [("f", {"step": 1})]

    custom = [c async for c in graph.astream(Command(resume="yes"), cfg, stream_mode="custom")]
    assert [(c["type"], c["id"]) for c in custom] == [("ui", "f"), ("remove-ui", "f")]
    assert custom[0]["props"] == {"answer": "yes"} and custom[0]["metadata"]["merge"] is True
    history = [s async for s in graph.aget_state_history(cfg)]
    after_ask = next(s for s in history if s.next == ("clear",))
    assert after_ask.values["ui"][0]["props"] == {"step": 1, "answer": "yes"}
    final = await graph.aget_state(cfg)
    assert final.values["ui"] == [] and final.values["messages"][-1].content == "got yes"


def test_a_retried_node_writes_the_pushes_of_its_last_attempt_only() -> None:
    attempts: list[int] = []

    def flaky(state: State) -> dict[str, Any]:
        attempts.append(1)
        push_ui_message("try", {"n": len(attempts)}, id=f"t{len(attempts)}")
        if len(attempts) < 2:
            raise ConnectionError("flaky")
        return {}

    builder = StateGraph(State)
    builder.add_node("flaky", flaky, retry_policy=RetryPolicy(initial_interval=0, jitter=False))
    builder.add_edge(START, "flaky")
    out = builder.compile().invoke({"messages": []})
    assert [m["id"] for m in out["ui"]] == ["t2"]


def test_a_tool_pushes_from_a_tool_node() -> None:
    from langchain_core.tools import tool

    from hitl_async.prebuilt import ToolNode

    @tool
    def chart(city: str) -> str:
        """Shows a chart of the city's weather."""
        push_ui_message("chart", {"city": city}, id=f"chart-{city}")
        return "shown"

    builder = StateGraph(State)
    builder.add_node("tools", ToolNode([chart]))
    builder.add_edge(START, "tools")
    calls = [{"name": "chart", "args": {"city": c}, "id": c} for c in ("oslo", "rome")]
    out = builder.compile().invoke({"messages": [AIMessage("", tool_calls=calls)]})
    assert sorted(m["id"] for m in out["ui"]) == ["chart-oslo", "chart-rome"]


def test_outside_a_graph_there_is_nothing_to_push_to() -> None:
    with pytest.raises(RuntimeError, match="inside a running graph node"):
        push_ui_message("x", {})
    with pytest.raises(RuntimeError, match="inside a running graph node"):
        delete_ui_message("x")
