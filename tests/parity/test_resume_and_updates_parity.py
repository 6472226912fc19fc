"""Continuing a paused thread, `update_state` with a `Command`, `Command.PARENT` and a failing
`@task`, restated from LangGraph's tests (and what LangGraph 1.2.22 does with the same graphs)."""

from __future__ import annotations

import dataclasses
import operator
import time
from typing import Annotated, Any, Literal

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, InMemorySaver, Send, StateUpdate, entrypoint, interrupt, task
from hitl_async.graph import START, StateGraph
from hitl_async.types import Interrupt, StateSnapshot

pytestmark = pytest.mark.anyio


def cfg(thread: str = "1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


class Counted:
    """A node of a root-list graph that logs `name` (or `name|arg` when sent an argument) and
    counts its calls; a `Command` argument comes back as a `Command` with that log as update."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = name
        self.calls = 0

    def __call__(self, state: Any) -> Any:
        self.calls += 1
        log = [self.name] if isinstance(state, list) else [f"{self.name}|{state}"]
        if isinstance(state, Command):
            return dataclasses.replace(state, update=log)
        return log


class AsksOnce:
    """Pauses on its first call only; logs `asker|arg` when it completes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, state: Any) -> list[str]:
        self.calls += 1
        if self.calls == 1:
            interrupt("hold on")
        return [f"asker|{state}"]


def sends_and_commands(saver: Any) -> tuple[Any, Counted, AsksOnce]:
    """`one` fans out: two `Send`s to `two` carrying `Command`s whose gotos send on (to `two`
    and to `asker`, which pauses once), and an edge to `side`; `two` always routes to `three`."""
    two, asker = Counted("two"), AsksOnce()

    def fan_out(state: Any) -> list[Any]:
        return [
            Send("two", Command(goto=Send("two", 3))),
            Send("two", Command(goto=Send("asker", 4))),
            "side",
        ]

    def to_three(state: Any) -> Literal["three"]:
        return "three"

    b = StateGraph(Annotated[list, operator.add])
    for node in (Counted("one"), two, Counted("three"), Counted("side")):
        b.add_node(node)
    b.add_node("asker", asker)
    b.add_edge(START, "one")
    b.add_conditional_edges("one", fan_out)
    b.add_conditional_edges("two", to_three)
    return b.compile(checkpointer=saver), two, asker


FINAL = [
    "0",
    "one",
    "side",
    "two|Command(goto=Send(node='two', arg=3))",
    "two|Command(goto=Send(node='asker', arg=4))",
    "three",
    "two|3",
    "asker|4",
    "three",
]


# test_pregel_async.py::test_send_dedupe_on_resume
@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_continuing_a_paused_step_reruns_only_the_paused_send(
    saver: Any, durability: str
) -> None:
    graph, two, asker = sends_and_commands(saver)
    first = await graph.ainvoke(["0"], cfg(), durability=durability)
    assert first == {"__interrupt__": [Interrupt(value="hold on", id=first["__interrupt__"][0].id)]}
    assert (two.calls, asker.calls) == (3, 1)
    # Input None reruns the paused task (it no longer asks); the finished `two`s are not rerun.
    assert await graph.ainvoke(None, cfg(), durability=durability) == FINAL
    assert (two.calls, asker.calls) == (3, 2)
    history = [s async for s in graph.aget_state_history(cfg())]
    assert len(history) == (6 if durability != "exit" else 2)
    assert [(s.metadata["step"], s.next) for s in history[:1]] == [(4, ())]
    paused = next(s for s in history if s.metadata["step"] == 2)
    assert paused.values == FINAL[:5]
    assert paused.next == ("two", "asker", "three")
    assert [(t.name, t.path, t.result) for t in paused.tasks] == [
        ("two", ("__pregel_push", 0, False), ["two|3"]),
        ("asker", ("__pregel_push", 1, False), ["asker|4"] if durability != "exit" else None),
        ("three", ("__pregel_pull", "three"), ["three"]),
    ]
    assert [i.value for i in paused.tasks[1].interrupts] == ["hold on"]
    if durability != "exit":
        fan = next(s for s in history if s.metadata["step"] == 1)
        assert [(t.name, t.path) for t in fan.tasks] == [
            ("two", ("__pregel_push", 0, False)),
            ("two", ("__pregel_push", 1, False)),
            ("side", ("__pregel_pull", "side")),
        ]
        first_cp = history[-1]
        assert (first_cp.metadata["source"], first_cp.next) == ("input", ("__start__",))
        assert [(t.name, t.path, t.result) for t in first_cp.tasks] == [
            ("__start__", ("__pregel_pull", "__start__"), ["0"])
        ]


class Mapped(TypedDict):
    foo: str
    tasks: Annotated[list[int], operator.add]


def map_reduce(saver: Any) -> Any:
    def fan(state: Mapped) -> Command[Literal["worker"]]:
        return Command(update={"foo": "map"}, goto=[Send("worker", {"index": i}) for i in range(3)])

    b = StateGraph(Mapped)
    b.add_node("agent", lambda s: {"foo": "agent"})
    b.add_node("map", fan)
    b.add_node("worker", lambda s: {"tasks": [s["index"]]})
    b.add_edge(START, "agent")
    b.add_edge("agent", "map")
    return b.compile(checkpointer=saver)


def summary(s: StateSnapshot) -> tuple[Any, ...]:
    return (s.values, s.next, s.metadata["step"], [t.name for t in s.tasks])


# test_pregel.py::test_batch_update_as_input
async def test_bulk_update_with_a_command_rebuilds_the_same_history(saver: Any) -> None:
    graph = map_reduce(saver)
    assert await graph.ainvoke({"foo": "input"}, cfg("run")) == {"foo": "map", "tasks": [0, 1, 2]}
    ran = [summary(s) async for s in graph.aget_state_history(cfg("run"))]
    await graph.abulk_update_state(
        cfg("built"),
        [
            [StateUpdate({"foo": "input"}, "__input__")],
            [StateUpdate({"foo": "input"}, "__start__")],
            [StateUpdate({"foo": "agent", "tasks": []}, "agent")],
            # a Command stands for what the node returned: its update and its Sends
            [
                StateUpdate(
                    Command(
                        update={"foo": "map"}, goto=[Send("worker", {"index": i}) for i in range(3)]
                    ),
                    "map",
                )
            ],
            [StateUpdate({"tasks": [i]}, "worker") for i in range(3)],
        ],
    )
    assert (await graph.aget_state(cfg("built"))).values == {"foo": "map", "tasks": [0, 1, 2]}
    built = [summary(s) async for s in graph.aget_state_history(cfg("built"))]
    assert built == ran
    assert built[1] == ({"foo": "map", "tasks": []}, ("worker",) * 3, 2, ["worker"] * 3)
    assert list(built[1][0]) == ["foo", "tasks"]  # values in the schema's order


async def test_update_state_with_a_command_goes_to_its_goto() -> None:
    graph = map_reduce(InMemorySaver())
    await graph.ainvoke({"foo": "input"}, cfg())
    await graph.aupdate_state(
        cfg(), Command(update={"foo": "again"}, goto=Send("worker", {"index": 7})), as_node="map"
    )
    assert (await graph.aget_state(cfg())).next == ("worker",)
    assert await graph.ainvoke(None, cfg()) == {"foo": "again", "tasks": [0, 1, 2, 7]}


class Dialog(TypedDict):
    dialog_state: Annotated[list[str], operator.add]


# test_pregel.py::test_parent_command_goto (subgraph_persist: None, True, False)
@pytest.mark.parametrize("persist", [None, True, False])
def test_a_subgraph_command_to_the_parent_goes_to_a_parent_node(persist: bool | None) -> None:
    def escalate(state: Dialog) -> Command[Any]:
        return Command(graph=Command.PARENT, goto="handler", update={"dialog_state": ["escalated"]})

    sub = StateGraph(Dialog)
    sub.add_node("greet", lambda s: {"dialog_state": ["greeted"]})
    sub.add_node("escalate", escalate)
    sub.add_edge(START, "greet")
    sub.add_edge("greet", "escalate")
    parent = StateGraph(Dialog)
    parent.add_node("desk", sub.compile(checkpointer=persist), destinations=("handler",))
    parent.add_node("handler", lambda s: {"dialog_state": ["handled"]})
    parent.add_edge(START, "desk")
    graph = parent.compile(checkpointer=InMemorySaver(), name="parent")
    out = graph.invoke({"dialog_state": ["hello"]}, cfg())
    assert out == {"dialog_state": ["hello", "escalated", "handled"]}
    chunks = list(graph.stream({"dialog_state": ["hello"]}, cfg("2"), subgraphs=True))
    assert [(len(ns), ns[0].split(":")[0] if ns else None, c) for ns, c in chunks] == [
        (1, "desk", {"greet": {"dialog_state": ["greeted"]}}),
        (0, None, {"desk": {"dialog_state": ["escalated"]}}),
        (0, None, {"handler": {"dialog_state": ["handled"]}}),
    ]


# test_pregel.py::test_imp_exception
def test_a_task_error_caught_by_the_entrypoint_does_not_stop_it() -> None:
    @task()
    def double(n: int) -> int:
        time.sleep(0.01)
        return n * 2

    @task()
    def fails(n: int) -> int:
        raise ValueError("this task fails")

    caught: list[str] = []

    @entrypoint(checkpointer=InMemorySaver())
    def workflow(n: int) -> str:
        double(n).result()
        try:
            fails(n).result()
        except ValueError as e:
            caught.append(str(e))
        double(n).result()
        return "done"

    assert workflow.invoke(1, cfg()) == "done"
    assert list(workflow.stream(1, cfg())) == [{"double": 2}, {"double": 2}, {"workflow": "done"}]
    assert caught == ["this task fails", "this task fails"]
