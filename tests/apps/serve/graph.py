"""The graphs the server tests serve: a 3-node approval (prepare -> approve -> notify) that
pauses on `interrupt()`, a slow loop (that fails on request), and two parallel interrupts."""

from __future__ import annotations

import operator
import time
from typing import Annotated

import anyio
from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, get_stream_writer, interrupt


class State(TypedDict, total=False):
    amount: float
    decision: str
    log: list[str]


def prepare(state: State) -> dict[str, object]:
    get_stream_writer()({"progress": "prepared"})
    return {"log": ["prepare"]}


def approve(state: State) -> dict[str, object]:
    answer = interrupt({"question": f"Approve {state['amount']}?"})
    if answer == "yes, slowly":
        time.sleep(1.0)  # keeps the resumed run busy for tests that need a busy thread
        answer = "yes"
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
    await anyio.sleep(0.2)
    return {"steps": state.get("steps", 0) + 1}


def again(state: SlowState) -> str:
    return "tick" if state.get("steps", 0) < 10 else END


slow_builder = StateGraph(SlowState)
slow_builder.add_node("tick", tick)
slow_builder.add_edge(START, "tick")
slow_builder.add_conditional_edges("tick", again, ["tick", END])
slow = slow_builder.compile()


class PairState(TypedDict, total=False):
    answers: Annotated[list[str], operator.add]


def ask_left(state: PairState) -> dict[str, object]:
    return {"answers": [f"left={interrupt('left?')}"]}


def ask_right(state: PairState) -> dict[str, object]:
    return {"answers": [f"right={interrupt('right?')}"]}


pair_builder = StateGraph(PairState)
pair_builder.add_node("left", ask_left)
pair_builder.add_node("right", ask_right)
pair_builder.add_edge(START, "left")
pair_builder.add_edge(START, "right")
pair_builder.add_edge("left", END)
pair_builder.add_edge("right", END)
pair = pair_builder.compile()


class InnerState(TypedDict, total=False):
    steps: int


def inner_step(state: InnerState) -> dict[str, object]:
    return {"steps": state.get("steps", 0) + 1}


inner_builder = StateGraph(InnerState)
inner_builder.add_node("inner_step", inner_step)
inner_builder.add_edge(START, "inner_step")
inner_builder.add_edge("inner_step", END)

outer_builder = StateGraph(InnerState)
outer_builder.add_node("child", inner_builder.compile())
outer_builder.add_edge(START, "child")
outer_builder.add_edge("child", END)
nested = outer_builder.compile()
