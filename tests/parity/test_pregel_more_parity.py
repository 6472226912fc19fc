"""More of LangGraph's pregel, pydantic, state and large-case tests, restated and run on every
driver: what a conditional edge sees of its node's return, a paused subgraph task's `state` in
snapshots, pydantic values of the functional API kept across a pause, and which fields of a
dataclass state the JSON schema requires."""

from __future__ import annotations

import dataclasses
import operator
import uuid
from typing import Annotated, Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    Command,
    RetryPolicy,
    Send,
    StateGraph,
    entrypoint,
    interrupt,
    task,
)

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


class Count(TypedDict):
    n: int


@pytest.mark.filterwarnings("ignore::UserWarning")  # (our UnknownStateKeyWarning for `hint`)
async def test_a_conditional_edge_sees_the_extra_keys_its_node_returned(saver: Any) -> None:
    """LangGraph's test_state_graph_packets (large cases): a node may hand its conditional edge
    data that is no state key; the edge sees it (state keys as reduced), the state never does."""
    seen: list[dict[str, Any]] = []

    def route(data: dict) -> str:  # (a plain dict annotation: no input schema of its own)
        seen.append(dict(data))
        return END

    g = StateGraph(Count)
    g.add_node("agent", lambda s: {"n": s["n"] + 1, "hint": "extra"})
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route)
    graph = g.compile(checkpointer=saver)
    config = cfg()
    assert await graph.ainvoke({"n": 1}, config) == {"n": 2}
    assert seen == [{"n": 2, "hint": "extra"}]
    assert (await graph.aget_state(config)).values == {"n": 2}


async def test_a_paused_subgraph_task_shows_the_config_of_its_state(saver: Any) -> None:
    """LangGraph's test_nested_graph_state (large cases): paused at the subgraph's
    interrupt_before, the parent's snapshot (get_state and history alike) gives the subgraph
    task a `state` that is the config of the subgraph's namespace, readable with get_state;
    tasks of plain nodes have none."""
    inner = StateGraph(Count)
    inner.add_node("i1", lambda s: {"n": s["n"] + 1})
    inner.add_node("i2", lambda s: {"n": s["n"] + 10})
    inner.add_edge(START, "i1")
    inner.add_edge("i1", "i2")
    g = StateGraph(Count)
    g.add_node("outer", lambda s: {"n": 100})
    g.add_node("inner", inner.compile(interrupt_before=["i2"]))
    g.add_edge(START, "outer")
    g.add_edge("outer", "inner")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"n": 0}, config)
    state = await graph.aget_state(config)
    (sub,) = state.tasks
    thread = config["configurable"]["thread_id"]
    assert sub.state == {"configurable": {"thread_id": thread, "checkpoint_ns": f"inner:{sub.id}"}}
    inner_state = await graph.aget_state(sub.state)
    assert inner_state.values == {"n": 101} and inner_state.next == ("i2",)
    shown = [
        (h.metadata["step"], [t.state for t in h.tasks])
        async for h in graph.aget_state_history(config)
    ]
    assert shown == [(1, [sub.state]), (0, [None]), (-1, [None])]


class Form(BaseModel):
    a: str
    b: str | None = None


async def test_pydantic_values_of_entrypoint_and_tasks_survive_a_pause(saver: Any) -> None:
    """LangGraph's test_interrupt_functional_pydantic: an entrypoint whose input and tasks'
    results are pydantic models (never registered by hand) pauses and resumes; the finished
    task is not run again and its result comes back as the model."""
    calls: list[str] = []

    @task
    def first(form: Form) -> Form:
        calls.append("first")
        return Form(a=form.a + "foo")

    @task
    def second(form: Form) -> dict:
        return {"a": form.a + "bar", "b": form.b}

    @entrypoint(checkpointer=saver)
    async def flow(form: Form) -> dict:
        pending = first(form)
        answer = interrupt("b?")
        done = await pending
        assert isinstance(done, Form)
        return await second(Form(a=done.a, b=answer))

    config = cfg()
    paused = await flow.ainvoke(Form(a=""), config)
    assert [i.value for i in paused["__interrupt__"]] == ["b?"]
    assert await flow.ainvoke(Command(resume="x"), config) == {"a": "foobar", "b": "x"}
    assert calls == ["first"]


def test_a_dataclass_state_requires_only_fields_without_default_or_none() -> None:
    """LangGraph's test_state_schema_default_values (test_state.py): in the input and output
    JSON schemas of a dataclass state, a field typed `X | None` is not required even without a
    default; one without a default (or with `...`) is."""

    @dataclasses.dataclass
    class Form:
        name: str
        age: int | None
        score: Annotated[float | None, "optional, annotated"]
        nick: str | None = None
        tags: list[str] = dataclasses.field(default_factory=list)
        kind: str = dataclasses.field(default=...)  # type: ignore[assignment]

    g = StateGraph(Form)
    g.add_node("n", lambda s: s)
    g.add_edge(START, "n")
    graph = g.compile()
    for schema in (graph.get_input_jsonschema(), graph.get_output_jsonschema()):
        assert set(schema["required"]) == {"name", "kind"}
        assert set(schema["properties"]) == {"name", "age", "score", "nick", "tags", "kind"}


def inner_outer(saver: Any, **inner_kw: Any) -> Any:
    """START -> outer -> inner (a subgraph i1 -> i2), counting in `n`."""
    inner = StateGraph(Count)
    inner.add_node("i1", lambda s: {"n": s["n"] + 1})
    inner.add_node("i2", lambda s: {"n": s["n"] + 10})
    inner.add_edge(START, "i1")
    inner.add_edge("i1", "i2")
    g = StateGraph(Count)
    g.add_node("outer", lambda s: {"n": 100})
    g.add_node("inner", inner.compile(**inner_kw))
    g.add_edge(START, "outer")
    g.add_edge("outer", "inner")
    return g.compile(checkpointer=saver)


async def test_checkpoint_events_give_a_subgraph_task_the_config_of_its_state(saver: Any) -> None:
    """LangGraph's test_debug_subgraphs: a `checkpoints` event lists the subgraph node's next
    task with the same `state` (the config of its namespace) as the history shows."""
    graph = inner_outer(saver)
    config = cfg()
    events = [c async for c in graph.astream({"n": 0}, config, stream_mode="checkpoints")]
    (before_inner,) = [e for e in events if e["next"] == ["inner"]]
    (task,) = before_inner["tasks"]
    thread = config["configurable"]["thread_id"]
    assert task["state"] == {
        "configurable": {"thread_id": thread, "checkpoint_ns": f"inner:{task['id']}"}
    }
    snaps = [h async for h in graph.aget_state_history(config)]
    (snap,) = [h for h in snaps if h.next == ("inner",)]
    assert snap.tasks[0].state == task["state"]
    assert all(e["tasks"][0]["state"] is None for e in events if e["next"] == ["outer"])


@pytest.mark.parametrize("durability", ["exit", "sync"])
async def test_under_exit_durability_a_finished_subgraph_stores_nothing(
    saver: Any, durability: str
) -> None:
    """LangGraph's test_debug_nested_subgraphs (durability="exit"): a subgraph call that runs
    to its end under durability="exit" leaves no checkpoint in its namespace (under "sync" it
    leaves its steps)."""
    graph = inner_outer(saver)
    config = cfg()
    chunks = [
        c async for c in graph.astream({"n": 0}, config, stream_mode="tasks", durability=durability)
    ]
    task_id = next(c["id"] for c in chunks if c["name"] == "inner" and "input" in c)
    sub = {
        "configurable": {
            "thread_id": config["configurable"]["thread_id"],
            "checkpoint_ns": f"inner:{task_id}",
        }
    }
    stored = [h async for h in graph.aget_state_history(sub)]
    assert (await graph.aget_state(config)).values == {"n": 111}
    if durability == "exit":
        assert stored == []
    else:
        assert stored[0].values == {"n": 111}


@pytest.mark.filterwarnings("ignore::UserWarning")  # (our UnknownStateKeyWarning for `hint`)
async def test_a_router_annotated_with_the_state_does_not_see_extra_keys(saver: Any) -> None:
    """LangGraph's test_input_schema_conditional_edge (test_state.py): a router whose parameter
    is annotated with a state class sees the state alone, not the other keys its node
    returned."""
    seen: list[dict[str, Any]] = []

    def route(state: Count) -> str:
        seen.append(dict(state))
        return END

    g = StateGraph(Count)
    g.add_node("agent", lambda s: {"n": s["n"] + 1, "hint": "extra"})
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route)
    graph = g.compile(checkpointer=saver)
    await graph.ainvoke({"n": 1}, cfg())
    assert seen == [{"n": 2}]


@pytest.mark.filterwarnings("ignore::UserWarning")  # (our UnknownStateKeyWarning for `hint`)
async def test_update_state_as_a_node_hands_its_extra_keys_to_the_edge(saver: Any) -> None:
    """LangGraph's test_state_graph_packets (the edit after the pause): update_state applied as
    the node that wrote last re-routes through that node's conditional edge, which sees the
    update's keys that are no state keys; the state does not keep them."""
    seen: list[dict[str, Any]] = []

    def route(data: dict) -> str:
        seen.append(dict(data))
        return "tool" if data["n"] < 5 else END

    g = StateGraph(Count)
    g.add_node("agent", lambda s: {"n": s["n"] + 1, "hint": "from node"})
    g.add_node("tool", lambda s: {"n": s["n"]})
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", route, ["tool", END])
    g.add_edge("tool", "agent")
    graph = g.compile(checkpointer=saver, interrupt_before=["tool"])
    config = cfg()
    await graph.ainvoke({"n": 0}, config)
    assert seen == [{"n": 1, "hint": "from node"}]
    await graph.aupdate_state(config, {"n": 7, "hint": "from edit"})
    assert seen[-1] == {"n": 7, "hint": "from edit"}
    state = await graph.aget_state(config)
    assert state.values == {"n": 7} and state.next == ()


async def test_a_node_given_as_a_dict_of_runnables_writes_each_key(saver: Any) -> None:
    """LangGraph's test_state_graph_packets (async variant): `add_node("agent", {"n": r})`
    runs each runnable of the dict on the state and writes its output to its key (LangChain's
    RunnableParallel, as LangGraph coerces a dict)."""
    from langchain_core.runnables import RunnableLambda

    g = StateGraph(Count)
    g.add_node("agent", {"n": RunnableLambda(lambda s: s["n"] * 10)})
    g.add_edge(START, "agent")
    graph = g.compile(checkpointer=saver)
    assert await graph.ainvoke({"n": 4}, cfg()) == {"n": 40}


class Total(TypedDict):
    value: Annotated[int, operator.add]


async def test_a_failed_step_keeps_the_finished_siblings_writes_and_the_error(
    saver: Any,
) -> None:
    """LangGraph's test_pending_writes_resume: after a step in which `one` finished and `two`
    failed, the head's pending writes (`get_tuple`) are `one`'s write and `two`'s error, no
    more; running on does not call `one` again."""
    calls = {"one": 0, "two": 0}

    def one(state: Total) -> dict[str, Any]:
        calls["one"] += 1
        return {"value": 2}

    def two(state: Total) -> dict[str, Any]:
        calls["two"] += 1
        raise ConnectionError("I'm not good")

    g = StateGraph(Total)
    g.add_node("one", one)
    g.add_node(
        "two", two, retry_policy=RetryPolicy(max_attempts=2, initial_interval=0, jitter=False)
    )
    g.add_edge(START, "one")
    g.add_edge(START, "two")
    graph = g.compile(checkpointer=saver)
    config = cfg()
    with pytest.raises(ConnectionError, match="I'm not good"):
        await graph.ainvoke({"value": 1}, config)
    assert calls == {"one": 1, "two": 2}
    head = await saver.aget_tuple(config)
    writes = sorted((channel, value) for _, channel, value in head.pending_writes)
    assert writes == [("__error__", 'ConnectionError("I\'m not good")'), ("value", 2)]
    ids = {task for task, channel, _ in head.pending_writes}
    assert len(ids) == 2
    with pytest.raises(ConnectionError, match="I'm not good"):
        await graph.ainvoke(None, config)
    assert calls == {"one": 1, "two": 4}


async def test_the_names_langgraph_tests_import_for_savers_and_task_paths(saver: Any) -> None:
    """LangGraph's tests annotate fixtures with `checkpoint.base.BaseCheckpointSaver`, compare
    `get_tuple` results with `CheckpointTuple`s, and task paths with `_internal._constants`
    PULL and PUSH: the same names here mean the same things."""
    from hitl_async._internal._constants import PULL, PUSH
    from hitl_async.checkpoint.base import BaseCheckpointSaver, CheckpointTuple

    assert isinstance(saver, BaseCheckpointSaver)
    g = StateGraph(Count)
    g.add_node("a", lambda s: {"n": 1})
    g.add_node("b", lambda s: {"n": 2})
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: [Send("b", s)], ["b"])
    graph = g.compile(checkpointer=saver, interrupt_before=["a", "b"])
    config = cfg()
    await graph.ainvoke({"n": 0}, config)
    assert [t.path for t in (await graph.aget_state(config)).tasks] == [(PULL, "a")]
    await graph.ainvoke(None, config)
    assert [t.path for t in (await graph.aget_state(config)).tasks] == [(PUSH, 0, False)]
    assert isinstance(await saver.aget_tuple(config), CheckpointTuple)


async def test_debug_shows_checkpoints_only_with_a_checkpointer(saver: Any) -> None:
    """LangGraph's test_in_one_fan_out_out_one_graph_state: a graph compiled without a
    checkpointer streams `debug` task events but no checkpoint events (with one, a checkpoint
    event per step, from the input's at -1)."""
    g = StateGraph(Count)
    g.add_node("a", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "a")
    plain = [
        (c["type"], c["step"]) async for c in g.compile().astream({"n": 0}, stream_mode="debug")
    ]
    assert plain == [("task", 1), ("task_result", 1)]
    kept = [
        (c["type"], c["step"])
        async for c in g.compile(checkpointer=saver).astream({"n": 0}, cfg(), stream_mode="debug")
    ]
    assert kept == [
        ("checkpoint", -1),
        ("checkpoint", 0),
        ("task", 1),
        ("task_result", 1),
        ("checkpoint", 1),
    ]


async def test_a_mock_as_a_node_is_called(saver: Any) -> None:
    """LangGraph's test_fork_always_re_runs_nodes uses `unittest.mock.Mock(side_effect=...)` as
    a node: it is called with the state like a function (not taken for a Runnable because it
    answers every attribute), and a fork reruns it."""
    from unittest.mock import Mock

    add_one = Mock(side_effect=lambda total: 1)
    g = StateGraph(Annotated[int, operator.add])
    g.add_node("add_one", add_one)
    g.add_edge(START, "add_one")
    g.add_conditional_edges("add_one", lambda total: "add_one" if total < 4 else END)
    graph = g.compile(checkpointer=saver)
    config = cfg()
    assert await graph.ainvoke(1, config) == 4
    assert add_one.call_count == 3
    first = [s async for s in graph.aget_state_history(config)][-2]  # before the first call
    assert await graph.ainvoke(None, first.config) == 4
    assert add_one.call_count == 6


async def test_under_exit_durability_a_resumed_subgraph_keeps_only_its_pause(saver: Any) -> None:
    """LangGraph's test_doubly_nested_graph_state (durability="exit"): a subgraph paused at its
    interrupt_before stores that pause; resumed and run to its end, it stores nothing more, so
    its history (read through the parent's task `state`) is the one paused checkpoint."""
    graph = inner_outer(saver, interrupt_before=["i2"])
    config = cfg()
    await graph.ainvoke({"n": 0}, config, durability="exit")
    await graph.ainvoke(None, config, durability="exit")
    assert (await graph.aget_state(config)).values == {"n": 111}
    entries = [h async for h in graph.aget_state_history(config)]
    (paused,) = [h for h in entries if h.next == ("inner",)]
    sub = [h async for h in graph.aget_state_history(paused.tasks[0].state)]
    assert [(h.values, h.next) for h in sub] == [({"n": 101}, ("i2",))]


async def test_callbacks_see_one_root_run_for_the_graph(saver: Any) -> None:
    """LangGraph's test_send_to_nested_graphs (its tracer): a run called with LangChain callbacks
    is one chain run named after the graph, its tasks (subgraphs reached by Send included) its
    children, and it ends with the state (without the pending interrupts)."""
    from langchain_core.callbacks import BaseCallbackHandler

    class Recorder(BaseCallbackHandler):
        def __init__(self) -> None:
            self.starts: list[tuple[str, Any]] = []
            self.root_end: Any = None

        def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
            self.starts.append((kw.get("name"), kw.get("parent_run_id")))

        def on_chain_end(self, outputs: Any, **kw: Any) -> None:
            if kw.get("parent_run_id") is None:
                self.root_end = outputs

    class Joke(TypedDict):
        subject: str

    def ask(state: Joke) -> dict[str, Any]:
        return {"subject": interrupt(state["subject"])}

    sub = StateGraph(Joke).add_node("ask", ask).add_edge(START, "ask").compile()
    g = StateGraph(Count)
    g.add_node("sub", sub)
    g.add_conditional_edges(START, lambda s: [Send("sub", {"subject": x}) for x in ("a", "b")])
    graph = g.compile(checkpointer=saver)
    recorder = Recorder()
    out = await graph.ainvoke({"n": 1}, {**cfg(), "callbacks": [recorder]})
    assert len(out["__interrupt__"]) == 2
    roots = [name for name, parent in recorder.starts if parent is None]
    assert roots == ["LangGraph"]
    assert [name for name, _ in recorder.starts].count("sub") == 2
    assert recorder.root_end == {"n": 1}
