"""`@task` called from a StateGraph node, as LangGraph 1.2.22 runs it: each call streams its own
`{task: result}` update, its result is kept with the node's task (a node rerun after an
interrupt gets it back without running the body again), and what it writes to the state
(`push_ui_message`) is applied with the node's step but not shown as the node's update. In an
`@entrypoint`, whose state has no `ui` key, such a write is dropped with a warning, as LangGraph
drops it. Observed on LangGraph with the same graphs (tests/parity, every driver)."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import Command, interrupt
from hitl_async._schema import UnknownStateKeyWarning
from hitl_async.func import entrypoint, task
from hitl_async.graph import START, StateGraph
from hitl_async.graph.ui import AnyUIMessage, delete_ui_message, push_ui_message, ui_message_reducer

pytestmark = pytest.mark.anyio


class Board(TypedDict, total=False):
    ui: Annotated[list[AnyUIMessage], ui_message_reducer]
    log: Annotated[list[Any], operator.add]


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


@task
def draw(n: int) -> int:
    push_ui_message("card", {"n": n}, id=f"m{n}")
    return n * 10


@task
def undraw(n: int) -> int:
    delete_ui_message(f"m{n}")
    return n


def cards(state: Any) -> list[str]:
    return [m["id"] for m in state.get("ui", [])]


# LangGraph's functional API inside graph nodes (push_ui_message in a task)
async def test_ui_messages_pushed_by_a_nodes_tasks_reach_the_state(saver: Any) -> None:
    def paint(state: Board) -> dict[str, Any]:
        return {"log": [draw(1).result(), draw(2).result()]}

    def erase(state: Board) -> dict[str, Any]:
        undraw(1).result()
        return {"log": ["erased"]}

    b = StateGraph(Board)
    b.add_node("paint", paint)
    b.add_node("erase", erase)
    b.add_edge(START, "paint")
    b.add_edge("paint", "erase")
    graph = b.compile(checkpointer=saver)
    config = cfg()
    seen = []
    async for mode, chunk in graph.astream({"log": []}, config, stream_mode=["updates", "custom"]):
        seen.append((mode, chunk["id"] if mode == "custom" else chunk))
    assert seen == [
        ("custom", "m1"),
        ("updates", {"draw": 10}),
        ("custom", "m2"),
        ("updates", {"draw": 20}),
        ("updates", {"paint": {"log": [10, 20]}}),  # the tasks' writes are not the node's
        ("custom", "m1"),
        ("updates", {"undraw": 1}),
        ("updates", {"erase": {"log": ["erased"]}}),
    ]
    state = await graph.aget_state(config)
    assert [(m["id"], m["props"]) for m in state.values["ui"]] == [("m2", {"n": 2})]
    assert state.values["log"] == [10, 20, "erased"]
    history = [(s.next, cards(s.values)) async for s in graph.aget_state_history(config)]
    assert history == [
        ((), ["m2"]),
        (("erase",), ["m1", "m2"]),
        (("paint",), []),
        (("__start__",), []),
    ]


async def test_a_nodes_task_result_is_kept_across_an_interrupt(saver: Any) -> None:
    ran: list[str] = []

    @task
    def charge(n: int) -> int:
        ran.append("charge")
        return n * 2

    @task
    def confirm(n: int) -> Any:
        ran.append("confirm")
        return interrupt({"ok?": n})

    def pay(state: Board) -> dict[str, Any]:
        amount = charge(1).result()
        return {"log": [amount, confirm(amount).result()]}

    graph = (
        StateGraph(Board).add_node("pay", pay).add_edge(START, "pay").compile(checkpointer=saver)
    )
    config = cfg()
    first = [chunk async for chunk in graph.astream({"log": []}, config)]
    assert first[0] == {"charge": 2}
    assert [i.value for i in first[1]["__interrupt__"]] == [{"ok?": 2}]
    assert (await graph.aget_state(config)).next == ("pay",)
    second = [chunk async for chunk in graph.astream(Command(resume="yes"), config)]
    assert second == [{"confirm": "yes"}, {"pay": {"log": [2, "yes"]}}]
    assert ran == ["charge", "confirm", "confirm"]  # charged once


async def test_an_async_nodes_tasks_run_together(saver: Any) -> None:
    both_running = anyio.Event()
    started: list[int] = []

    @task
    async def fetch(n: int) -> int:
        started.append(n)
        if len(started) == 2:
            both_running.set()
        with anyio.fail_after(5):  # the other call runs meanwhile
            await both_running.wait()
        return n + 100

    async def gather(state: Board) -> dict[str, Any]:
        first, second = fetch(1), fetch(2)
        return {"log": [await first, await second]}

    b = StateGraph(Board).add_node("gather", gather).add_edge(START, "gather")
    graph = b.compile(checkpointer=saver)
    assert (await graph.ainvoke({"log": []}, cfg()))["log"] == [101, 102]


async def test_an_entrypoint_drops_the_ui_write_of_its_task(saver: Any) -> None:
    """LangGraph logs "Task draw ... wrote to unknown channel ui, ignoring it"; here an
    `UnknownStateKeyWarning`. The message is streamed all the same."""

    def body(n: int) -> int:
        return draw(n).result()

    name = body.__name__ = body.__qualname__ = f"workflow_{uuid.uuid4().hex[:8]}"  # (warned once)
    workflow = entrypoint(checkpointer=saver)(body)
    config = cfg()
    with pytest.warns(UnknownStateKeyWarning, match="'ui'"):
        seen = [e async for e in workflow.astream(3, config, stream_mode=["updates", "custom"])]
    assert [(m, c["id"] if m == "custom" else c) for m, c in seen] == [
        ("custom", "m3"),
        ("updates", {"draw": 30}),
        ("updates", {name: 30}),
    ]
    assert (await workflow.aget_state(config)).values == 30
