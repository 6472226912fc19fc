"""Stream modes, durability, invoke, and the sync facade next to the async API."""

from __future__ import annotations

import operator
import re
import threading
from typing import Annotated, Any

import pytest
from typing_extensions import TypedDict

from hitl_async import Command, InMemorySaver, Interrupt, interrupt
from hitl_async.graph import END, START, StateGraph

HEX32 = re.compile(r"[0-9a-f]{32}")


class X(TypedDict, total=False):
    x: int
    d: str


class L(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def cfg(thread: str = "t") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def a_ask_b() -> Any:
    """START -> a (x+1) -> ask (interrupt) -> b (x*10) -> END."""

    def ask(state: X) -> dict[str, Any]:
        return {"d": interrupt("q?")}

    b = StateGraph(X)
    b.add_node("a", lambda s: {"x": s["x"] + 1})
    b.add_node("ask", ask)
    b.add_node("b", lambda s: {"x": s["x"] * 10})
    b.add_edge(START, "a")
    b.add_edge("a", "ask")
    b.add_edge("ask", "b")
    b.add_edge("b", END)
    return b.compile(checkpointer=InMemorySaver())


def a_b(**compile_kw: Any) -> Any:
    b = StateGraph(X)
    b.add_node("a", lambda s: {"x": s["x"] + 1})
    b.add_node("b", lambda s: {"x": s["x"] * 10})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    return b.compile(checkpointer=InMemorySaver(), **compile_kw)


# -- stream modes ----------------------------------------------------------------------------------


def test_updates_is_the_default_mode() -> None:
    graph = a_b()
    assert list(graph.stream({"x": 1}, cfg())) == [{"a": {"x": 2}}, {"b": {"x": 20}}]
    assert list(graph.stream({"x": 1}, cfg("u"), stream_mode="updates")) == [
        {"a": {"x": 2}},
        {"b": {"x": 20}},
    ]


def test_values_mode_with_pause_and_resume() -> None:
    graph = a_ask_b()
    first = list(graph.stream({"x": 1}, cfg(), stream_mode="values"))
    assert first[:2] == [{"x": 1}, {"x": 2}]
    assert len(first) == 3
    (intr,) = first[2].pop("__interrupt__")
    assert first[2] == {"x": 2}
    assert intr.value == "q?" and HEX32.fullmatch(intr.id)
    resumed = list(graph.stream(Command(resume="yes"), cfg(), stream_mode="values"))
    assert resumed == [{"x": 2}, {"x": 2, "d": "yes"}, {"x": 20, "d": "yes"}]


def test_list_of_modes_yields_mode_chunk_pairs() -> None:
    graph = a_ask_b()
    first = list(graph.stream({"x": 1}, cfg(), stream_mode=["updates", "values"]))
    intr = first[3][1]["__interrupt__"][0]
    assert isinstance(intr, Interrupt)
    assert first == [
        ("values", {"x": 1}),
        ("updates", {"a": {"x": 2}}),
        ("values", {"x": 2}),
        ("updates", {"__interrupt__": (intr,)}),
        ("values", {"x": 2, "__interrupt__": (intr,)}),
    ]
    resumed = list(graph.stream(Command(resume="yes"), cfg(), stream_mode=["updates", "values"]))
    assert resumed == [
        ("values", {"x": 2}),
        ("updates", {"ask": {"d": "yes"}}),
        ("values", {"x": 2, "d": "yes"}),
        ("updates", {"b": {"x": 20}}),
        ("values", {"x": 20, "d": "yes"}),
    ]


def test_custom_mode_from_get_stream_writer_and_writer_param() -> None:
    from hitl_async.config import get_stream_writer

    def talker(state: L) -> dict[str, Any]:
        write = get_stream_writer()
        write("hello")
        write({"progress": 1})
        return {"log": ["talker"]}

    async def async_talker(state: L, writer: Any) -> dict[str, Any]:
        writer({"from": "param"})
        return {"log": ["async_talker"]}

    b = StateGraph(L)
    b.add_node("talker", talker)
    b.add_node("async_talker", async_talker)
    b.add_edge(START, "talker")
    b.add_edge("talker", "async_talker")
    graph = b.compile()
    assert list(graph.stream({"log": []}, stream_mode="custom")) == [
        "hello",
        {"progress": 1},
        {"from": "param"},
    ]
    both = list(graph.stream({"log": []}, stream_mode=["custom", "updates"]))
    assert ("custom", "hello") in both
    assert ("updates", {"talker": {"log": ["talker"]}}) in both
    # without "custom" the writes go nowhere
    assert list(graph.stream({"log": []})) == [
        {"talker": {"log": ["talker"]}},
        {"async_talker": {"log": ["async_talker"]}},
    ]


def test_debug_mode_chunk_shapes() -> None:
    graph = a_b()
    chunks = list(graph.stream({"x": 1}, cfg(), stream_mode="debug"))
    assert [(c["type"], c["step"]) for c in chunks] == [
        ("checkpoint", -1),
        ("checkpoint", 0),
        ("task", 1),
        ("task_result", 1),
        ("checkpoint", 1),
        ("task", 2),
        ("task_result", 2),
        ("checkpoint", 2),
    ]
    for c in chunks:
        assert set(c) == {"step", "timestamp", "type", "payload"}
        assert isinstance(c["timestamp"], str)
    first = chunks[0]["payload"]
    assert set(first) == {"config", "parent_config", "values", "metadata", "next", "tasks"}
    assert first["parent_config"] is None and first["values"] == {}
    assert first["next"] == ["__start__"]
    task, result = chunks[2]["payload"], chunks[3]["payload"]
    assert set(task) == {"id", "name", "input", "triggers"}
    assert task["name"] == "a" and task["input"] == {"x": 1}
    assert set(result) == {"id", "name", "error", "result", "interrupts"}
    assert result == {
        "id": task["id"],
        "name": "a",
        "error": None,
        "result": {"x": 2},
        "interrupts": [],
    }
    assert chunks[-1]["payload"]["values"] == {"x": 20}
    assert chunks[-1]["payload"]["next"] == []


def test_debug_mode_reports_interrupts() -> None:
    graph = a_ask_b()
    chunks = list(graph.stream({"x": 1}, cfg(), stream_mode="debug"))
    last = chunks[-1]
    assert last["type"] == "task_result"
    assert last["payload"]["name"] == "ask" and last["payload"]["result"] == {}
    (intr,) = last["payload"]["interrupts"]
    assert intr["value"] == "q?" and HEX32.fullmatch(intr["id"])


def test_checkpoints_mode() -> None:
    graph = a_b()
    chunks = list(graph.stream({"x": 1}, cfg(), stream_mode="checkpoints"))
    assert [c["metadata"]["step"] for c in chunks] == [-1, 0, 1, 2]
    assert [c["next"] for c in chunks] == [["__start__"], ["a"], ["b"], []]
    history = list(graph.get_state_history(cfg()))
    assert [c["config"] for c in chunks] == [s.config for s in reversed(history)]
    for chunk, older in zip(chunks[1:], chunks, strict=False):
        assert chunk["parent_config"] == older["config"]


def test_tasks_mode() -> None:
    graph = a_b()
    chunks = list(graph.stream({"x": 1}, cfg(), stream_mode="tasks"))
    assert [(c["name"], "result" in c) for c in chunks] == [
        ("a", False),
        ("a", True),
        ("b", False),
        ("b", True),
    ]
    assert chunks[0]["id"] == chunks[1]["id"] != chunks[2]["id"]
    assert chunks[1]["result"] == {"x": 2} and chunks[3]["result"] == {"x": 20}
    assert chunks[2]["input"] == {"x": 2}


def test_unknown_stream_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="stream_mode"):
        list(a_b().stream({"x": 1}, cfg(), stream_mode="everything"))


# -- durability ------------------------------------------------------------------------------------


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_durability_modes_give_the_same_result(durability: str) -> None:
    graph = a_b()
    out = graph.invoke({"x": 1}, cfg(), durability=durability)
    assert out == {"x": 20}
    snap = graph.get_state(cfg())
    assert snap.values == {"x": 20} and snap.next == ()
    assert snap.metadata["step"] == 2
    history = list(graph.get_state_history(cfg()))
    if durability == "exit":
        assert len(history) == 1 and history[0].config == snap.config
    else:
        assert [s.metadata["step"] for s in history] == [2, 1, 0, -1]


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
def test_durability_modes_keep_a_pause_resumable(durability: str) -> None:
    graph = a_ask_b()
    list(graph.stream({"x": 1}, cfg(), durability=durability))
    snap = graph.get_state(cfg())
    assert snap.next == ("ask",) and len(snap.interrupts) == 1
    out = graph.invoke(Command(resume="yes"), cfg(), durability=durability)
    assert out == {"x": 20, "d": "yes"}


def test_bad_durability_is_rejected() -> None:
    with pytest.raises(ValueError, match="durability"):
        a_b().invoke({"x": 1}, cfg(), durability="never")


# -- invoke ----------------------------------------------------------------------------------------


def test_invoke_returns_interrupts_as_a_list() -> None:
    graph = a_ask_b()
    out = graph.invoke({"x": 1}, cfg())
    assert set(out) == {"x", "__interrupt__"} and out["x"] == 2
    assert isinstance(out["__interrupt__"], list)
    (intr,) = out["__interrupt__"]
    assert intr.value == "q?"
    assert graph.invoke(Command(resume="yes"), cfg()) == {"x": 20, "d": "yes"}
    assert graph.invoke(None, cfg()) == {"x": 20, "d": "yes"}  # finished: current values


def test_invoke_lists_every_parallel_interrupt() -> None:
    from hitl_async import Send

    b = StateGraph(L)
    b.add_node("plan", lambda s: None)
    b.add_node("review", lambda arg: {"log": [interrupt(arg)]})
    b.add_edge(START, "plan")
    b.add_conditional_edges("plan", lambda s: [Send("review", i) for i in ("p", "q")])
    out = b.compile(checkpointer=InMemorySaver()).invoke({"log": []}, cfg())
    assert sorted(i.value for i in out["__interrupt__"]) == ["p", "q"]


def test_invoke_on_static_pause_has_no_interrupt_key() -> None:
    graph = a_b(interrupt_before=["b"])
    assert graph.invoke({"x": 1}, cfg()) == {"x": 2}
    assert graph.invoke(None, cfg()) == {"x": 20}


def test_invoke_with_updates_mode_returns_the_events() -> None:
    assert a_b().invoke({"x": 1}, cfg(), stream_mode="updates") == [
        {"a": {"x": 2}},
        {"b": {"x": 20}},
    ]


# -- sync facade and async API ---------------------------------------------------------------------


def test_sync_facade_from_plain_code() -> None:
    import asyncio

    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()  # really no loop here
    graph = a_ask_b()
    events = list(graph.stream({"x": 1}, cfg()))
    assert events[0] == {"a": {"x": 2}}
    snap = graph.get_state(cfg())
    assert snap.next == ("ask",)
    new_config = graph.update_state(cfg(), {"x": 5})
    assert graph.get_state(cfg()).config == new_config
    assert graph.invoke(Command(resume="ok"), cfg()) == {"x": 50, "d": "ok"}
    steps = [s.metadata["step"] for s in graph.get_state_history(cfg())]
    assert steps == [4, 3, 2, 1, 0, -1]


def test_sync_facade_from_several_threads() -> None:
    graph = a_b()
    results: dict[int, Any] = {}

    def worker(i: int) -> None:
        results[i] = graph.invoke({"x": i}, cfg(f"thread-{i}"))

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    assert results == {i: {"x": (i + 1) * 10} for i in range(4)}


def test_abandoned_sync_stream_keeps_thread_consistent() -> None:
    graph = a_b()
    stream = graph.stream({"x": 1}, cfg())
    assert next(stream) == {"a": {"x": 2}}
    stream.close()
    snap = graph.get_state(cfg())
    assert snap.next == ("b",) and snap.values == {"x": 2}
    assert list(graph.stream(None, cfg())) == [{"b": {"x": 20}}]
    assert graph.get_state(cfg()).values == {"x": 20}


@pytest.mark.anyio
async def test_async_api() -> None:
    graph = a_ask_b()
    out = await graph.ainvoke({"x": 1}, cfg())
    (intr,) = out["__interrupt__"]
    snap = await graph.aget_state(cfg())
    assert snap.interrupts == (intr,)
    await graph.aupdate_state(cfg(), {"x": 3})
    events = [e async for e in graph.astream(Command(resume={intr.id: "ok"}), cfg())]
    assert events == [{"ask": {"d": "ok"}}, {"b": {"x": 30}}]
    history = [s async for s in graph.aget_state_history(cfg())]
    assert [s.metadata["source"] for s in history] == [
        "loop",
        "loop",
        "update",
        "loop",
        "loop",
        "input",
    ]
