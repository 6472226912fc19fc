"""A `@task` call a StateGraph node starts and never awaits, as LangGraph 1.2.22 runs it: the
step waits for it; its result is kept and streamed (after the node's own update), what it writes
(`push_ui_message`) is applied with the step, and an error it raises is left unseen. A call
that pauses on `interrupt()` pauses the node (LangGraph ends the run without reporting it, and
continuing skips it: a difference, README). Observed on LangGraph with the same graphs; no
LangGraph test covers it. They run on every driver."""

from __future__ import annotations

import operator
import time
import uuid
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import Command, StepTimeoutError, interrupt
from hitl_async.func import task
from hitl_async.graph import START, StateGraph
from hitl_async.graph.ui import AnyUIMessage, push_ui_message, ui_message_reducer

pytestmark = pytest.mark.anyio


class Board(TypedDict, total=False):
    ui: Annotated[list[AnyUIMessage], ui_message_reducer]
    log: Annotated[list[Any], operator.add]


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def chain(saver: Any, first: Any, seen: list[Any]) -> Any:
    """`first`, then `then`, which records what of the first step it sees."""

    def then(state: Board) -> Board:
        seen.append((list(state.get("log", [])), [m["id"] for m in state.get("ui", [])]))
        return {"log": ["then"]}

    b = StateGraph(Board).add_node("first", first).add_node("then", then)
    return b.add_edge(START, "first").add_edge("first", "then").compile(checkpointer=saver)


@pytest.mark.parametrize("sync", [True, False])
async def test_the_step_waits_for_a_call_the_node_did_not_await(saver: Any, sync: bool) -> None:
    ran: list[str] = []

    @task
    def card(n: int) -> int:
        time.sleep(0.1)  # ends well after the node returned
        push_ui_message("card", {"n": n}, id=f"m{n}")
        ran.append("card")
        return n * 10

    def node(state: Board) -> Board:
        card(1)
        return {"log": ["node"]}

    async def anode(state: Board) -> Board:
        card(1)
        return {"log": ["node"]}

    seen: list[Any] = []
    graph = chain(saver, node if sync else anode, seen)
    config = cfg()
    chunks = [c async for c in graph.astream({"log": []}, config, stream_mode="updates")]
    assert chunks == [
        {"first": {"log": ["node"]}},
        {"card": 10},
        {"then": {"log": ["then"]}},
    ]
    assert seen == [(["node"], ["m1"])]  # its write was applied with the step
    assert ran == ["card"]
    history = [s async for s in graph.aget_state_history(config)]
    assert [(s.metadata["step"], s.next) for s in history] == [
        (2, ()),
        (1, ("then",)),
        (0, ("first",)),
        (-1, ("__start__",)),
    ]


async def test_an_error_in_a_call_the_node_did_not_await_is_left_unseen(saver: Any) -> None:
    @task
    def fails(n: int) -> int:
        time.sleep(0.05)
        raise ValueError("not seen")

    def node(state: Board) -> Board:
        fails(1)
        return {"log": ["node"]}

    seen: list[Any] = []
    graph = chain(saver, node, seen)
    assert await graph.ainvoke({"log": []}, cfg()) == {"log": ["node", "then"], "ui": []}


# (awaited or not: the call's state write is kept with its result, as LangGraph keeps the
# writes of a task of its own; before, a rerun that reused the result lost it)
@pytest.mark.parametrize("wait", [False, True])
async def test_a_call_the_node_did_not_await_is_kept_across_the_nodes_interrupt(
    saver: Any, wait: bool
) -> None:
    ran: list[str] = []

    @task
    def card(n: int) -> int:
        time.sleep(0.05)
        push_ui_message("card", {"n": n}, id=f"m{n}")
        ran.append("card")
        return n * 10

    def node(state: Board) -> Board:
        call = card(4)
        if wait:
            call.result()
        return {"log": [interrupt("ok?")]}

    seen: list[Any] = []
    graph = chain(saver, node, seen)
    config = cfg()
    first = await graph.ainvoke({"log": []}, config)
    assert [i.value for i in first["__interrupt__"]] == ["ok?"] and ran == ["card"]
    # the paused run's output shows what the call wrote; get_state() does not (as LangGraph)
    assert [m["id"] for m in first["ui"]] == ["m4"]
    assert (await graph.aget_state(config)).values == {"log": [], "ui": []}
    out = await graph.ainvoke(Command(resume="yes"), config)
    assert out["log"] == ["yes", "then"]
    assert [m["id"] for m in out["ui"]] == ["m4"]  # what it wrote is kept with its result
    assert seen == [(["yes"], ["m4"])]
    assert ran == ["card"]  # its kept result: not run again


# a difference (README): LangGraph ends the run without reporting the call's interrupt, and
# continuing the thread goes on without asking it; here the node pauses with it
async def test_a_call_the_node_did_not_await_that_asks_pauses_the_node(saver: Any) -> None:
    ran: list[str] = []

    @task
    def asker(n: int) -> Any:
        ran.append("asker")
        return interrupt(f"q{n}")

    def node(state: Board) -> Board:
        ran.append("node")
        asker(1)
        return {"log": ["node"]}

    seen: list[Any] = []
    graph = chain(saver, node, seen)
    config = cfg()
    first = await graph.ainvoke({"log": []}, config)
    assert [i.value for i in first["__interrupt__"]] == ["q1"]
    assert (await graph.aget_state(config)).next == ("first",)
    chunks = [c async for c in graph.astream(Command(resume="a"), config, stream_mode="updates")]
    # (the answered call may end before the node returns or after: either order)
    assert sorted(chunks[:2], key=repr) == [{"asker": "a"}, {"first": {"log": ["node"]}}]
    assert chunks[2:] == [{"then": {"log": ["then"]}}]
    assert ran == ["node", "asker", "node", "asker"]


# observed on LangGraph 1.2.22: the call counts toward the step's time (step_timeout) and is
# cancelled at the limit. LangGraph keeps the node's writes (the call is a task of its own);
# here the node is part of the cut-short task and runs again with it (a difference, README).
async def test_a_call_the_node_did_not_await_is_cancelled_with_its_step(saver: Any) -> None:
    cancelled: list[bool] = []

    @task
    async def slow(n: int) -> int:
        try:
            await anyio.sleep(30)
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise
        return n

    async def node(state: Board) -> Board:
        slow(1)
        return {"log": ["node"]}

    graph = chain(saver, node, [])
    graph.step_timeout = 0.2
    config = cfg()
    with pytest.raises(StepTimeoutError, match=r"cancelled its tasks still running: \['first'\]"):
        await graph.ainvoke({"log": []}, config)
    await anyio.sleep(0.05)
    assert cancelled == [True]
    assert (await graph.aget_state(config)).next == ("first",)


# observed on LangGraph 1.2.22: a call's `updates` event comes before its `tasks` result, and
# a call the node did not await reports both after the node's own
@pytest.mark.parametrize("wait", [False, True])
async def test_the_order_of_a_calls_events(saver: Any, wait: bool) -> None:
    @task
    def side(n: int) -> int:
        time.sleep(0.1)
        return n * 10

    def node(state: Board) -> Board:
        call = side(1)
        if wait:
            call.result()
        return {"log": ["node"]}

    graph = StateGraph(Board).add_node("node", node).add_edge(START, "node")
    graph = graph.compile(checkpointer=saver)
    seen = [
        (mode, chunk["name"], "result" in chunk) if mode == "tasks" else (mode, *chunk)
        async for mode, chunk in graph.astream({"log": []}, cfg(), stream_mode=["tasks", "updates"])
    ]
    node_ends = [("updates", "node"), ("tasks", "node", True)]
    side_ends = [("updates", "side"), ("tasks", "side", True)]
    assert seen == [
        ("tasks", "node", False),
        ("tasks", "side", False),
        *(side_ends + node_ends if wait else node_ends + side_ends),
    ]
