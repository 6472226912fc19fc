"""The graphs of tests/apps/serve/graph.py with LangGraph's imports: what `langgraph dev` served
when tests/server/golden/langgraph_dev.json was recorded (see tests/server/differential.py).
Never run in CI; LangGraph is not a dependency."""

from __future__ import annotations

import asyncio

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict, total=False):
    amount: float
    decision: str
    log: list[str]


def prepare(state: State) -> dict[str, object]:
    get_stream_writer()({"progress": "prepared"})
    return {"log": ["prepare"]}


def approve(state: State) -> dict[str, object]:
    answer = interrupt({"question": f"Approve {state['amount']}?"})
    return {"decision": "approved" if answer == "yes" else "rejected"}


def notify(state: State) -> dict[str, object]:
    return {"log": [*state.get("log", []), "notify"]}


builder = StateGraph(State)
builder.add_node("prepare", prepare)
builder.add_node("approve", approve)
builder.add_node("notify", notify)
builder.add_edge(START, "prepare")
builder.add_edge("prepare", "approve")
builder.add_edge("approve", "notify")
builder.add_edge("notify", END)
graph = builder.compile()


class SlowState(TypedDict, total=False):
    steps: int
    fail: bool


async def tick(state: SlowState) -> dict[str, object]:
    if state.get("fail"):
        raise RuntimeError("the node failed on purpose")
    await asyncio.sleep(0.2)
    return {"steps": state.get("steps", 0) + 1}


def again(state: SlowState) -> str:
    return "tick" if state.get("steps", 0) < 10 else END


slow_builder = StateGraph(SlowState)
slow_builder.add_node("tick", tick)
slow_builder.add_edge(START, "tick")
slow_builder.add_conditional_edges("tick", again, ["tick", END])
slow = slow_builder.compile()
