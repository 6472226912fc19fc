"""Parity with LangGraph: subgraph persistence — `compile(checkpointer=True)` keeps a subgraph's
state between calls in one parent thread (a namespace of the calling node, without task id),
the default keeps it per call only — and `get_state(subgraphs=True)` for subgraphs called from
inside a node function, restated from LangGraph's tests, on every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from typing_extensions import TypedDict

from hitl_async import END, START, Command, StateGraph, interrupt
from hitl_async.graph import MessagesState as Chat

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


class Inner(TypedDict):
    my_key: Annotated[str, operator.add]
    my_other_key: str


class Outer(TypedDict):
    my_key: str


class Parent(TypedDict):
    result: str


class Sub(TypedDict, total=False):
    bar: str
    baz: str


class Foo(TypedDict):
    foo: str


def texts(state: Any) -> list[str]:
    return [m.content for m in state["messages"]]


def inner_graph() -> StateGraph:
    g = StateGraph(Inner)
    g.add_node("inner_1", lambda s: {"my_key": " got here", "my_other_key": s["my_key"]})
    g.add_node("inner_2", lambda s: {"my_key": " and there"})
    g.add_edge("inner_1", "inner_2")
    g.set_entry_point("inner_1")
    g.set_finish_point("inner_2")
    return g


def looping(inner: Any) -> StateGraph:
    g = StateGraph(Outer)
    g.add_node("inner", inner)
    g.add_edge(START, "inner")
    g.add_conditional_edges("inner", lambda s: "inner" if s["my_key"].count("there") < 2 else END)
    return g


def echo(prefix: str, *, ask: bool = False) -> Any:
    """A chat subgraph answering `prefix: <last message>` (after asking, with `ask`), then
    "Done" when it asked."""

    def process(state: Chat) -> Chat:
        if ask:
            interrupt("continue?")
        return {"messages": [AIMessage(f"{prefix}: {state['messages'][-1].content}")]}

    g = StateGraph(Chat)
    g.add_node("process", process)
    g.add_edge(START, "process")
    if ask:
        g.add_node("respond", lambda s: {"messages": [AIMessage("Done")]})
        g.add_edge("process", "respond")
    return g.compile()


def wrapped(inner: Any, node: str = "agent") -> Any:
    """`inner` as the one node of a graph compiled with checkpointer=True (stateful)."""
    g = StateGraph(Chat)
    g.add_node(node, inner)
    g.add_edge(START, node)
    return g.compile(checkpointer=True)


def caller(sub: Any, seen: list[list[str]], topics: list[str]) -> Any:
    async def call_inner(state: Parent) -> Parent:
        topic = topics[len(seen)]
        resp = await sub.ainvoke({"messages": [HumanMessage(f"tell me about {topic}")]})
        seen.append(texts(resp))
        return {"result": resp["messages"][-1].content}

    g = StateGraph(Parent)
    g.add_node("call_inner", call_inner)
    g.add_edge(START, "call_inner")
    return g


def baz_subgraph(checkpointer: Any) -> Any:
    g = StateGraph(Sub)
    g.add_node("subgraph_node_1", lambda s: {"baz": interrupt("Provide baz value")})
    g.add_node("subgraph_node_2", lambda s: {"bar": s["bar"] + s["baz"]})
    g.add_edge(START, "subgraph_node_1")
    g.add_edge("subgraph_node_1", "subgraph_node_2")
    return g.compile(checkpointer=checkpointer)


def calls_baz(subgraph: Any) -> StateGraph:
    async def node_2(state: Foo) -> Foo:
        response = await subgraph.ainvoke({"bar": state["foo"]})
        return {"foo": response["bar"]}

    g = StateGraph(Foo)
    g.add_node("node_1", lambda s: {"foo": "hi! " + s["foo"]})
    g.add_node("node_2", node_2)
    g.add_edge(START, "node_1")
    g.add_edge("node_1", "node_2")
    return g


LOOPED = [
    (("inner",), {"inner_1": {"my_key": " got here", "my_other_key": ""}}),
    (("inner",), {"inner_2": {"my_key": " and there"}}),
    ((), {"inner": {"my_key": " got here and there"}}),
    (
        ("inner",),
        {
            "inner_1": {
                "my_key": " got here",
                "my_other_key": " got here and there got here and there",
            }
        },
    ),
    (("inner",), {"inner_2": {"my_key": " and there"}}),
    ((), {"inner": {"my_key": " got here and there got here and there got here and there"}}),
]


# test_pregel_async.py::test_subgraph_checkpoint_true
@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_checkpointer_true_subgraph_node_keeps_its_state(saver: Any, durability: str) -> None:
    app = looping(inner_graph().compile(checkpointer=True)).compile(checkpointer=saver)
    chunks = [
        c async for c in app.astream({"my_key": ""}, cfg(), subgraphs=True, durability=durability)
    ]
    assert chunks == LOOPED


# test_pregel_async.py::test_subgraph_checkpoint_true (the subgraph's own history)
async def test_checkpointer_true_subgraph_history_in_its_namespace(saver: Any) -> None:
    app = looping(inner_graph().compile(checkpointer=True)).compile(checkpointer=saver)
    config = cfg()
    await app.ainvoke({"my_key": ""}, config)
    sub_config = {"configurable": {**config["configurable"], "checkpoint_ns": "inner"}}
    hist = [s async for s in app.aget_state_history(sub_config)]
    assert hist[0].values == {
        "my_key": " got here and there got here and there got here and there",
        "my_other_key": " got here and there got here and there",
    }
    assert [s.metadata["source"] for s in hist] == ["loop"] * 3 + ["input"] + ["loop"] * 3 + [
        "input"
    ]
    parent_ids = {
        s.config["configurable"]["checkpoint_id"] async for s in app.aget_state_history(config)
    }
    # every subgraph checkpoint names the parent checkpoint it ran in, as LangGraph's do
    assert all(set(s.metadata["parents"]) == {""} for s in hist)
    assert all(s.metadata["parents"][""] in parent_ids for s in hist)


# test_pregel.py::test_subgraph_checkpoint_true (default: a fresh subgraph state per call)
async def test_default_subgraph_node_starts_fresh_each_call(saver: Any) -> None:
    app = looping(inner_graph().compile()).compile(checkpointer=saver)
    chunks = [c async for c in app.astream({"my_key": ""}, cfg(), subgraphs=True)]
    namespaces = {ns for ns, _ in chunks if ns}
    assert len(namespaces) == 2 and all(ns[0].startswith("inner:") for ns in namespaces)
    firsts = [c["inner_1"]["my_other_key"] for ns, c in chunks if ns and "inner_1" in c]
    assert firsts == ["", " got here and there"]


# test_pregel_async.py::test_subgraph_checkpoint_true_interrupt
@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_checkpointer_true_subgraph_called_in_a_node_pauses(
    saver: Any, durability: str
) -> None:
    graph = calls_baz(baz_subgraph(True)).compile(checkpointer=saver)
    config = cfg()
    paused = await graph.ainvoke({"foo": "foo"}, config, durability=durability)
    assert paused["foo"] == "hi! foo"
    assert [i.value for i in paused["__interrupt__"]] == ["Provide baz value"]
    state = await graph.aget_state(config, subgraphs=True)
    assert state.tasks[0].state.values == {"bar": "hi! foo"}
    assert state.tasks[0].state.config["configurable"]["checkpoint_ns"] == "node_2"
    resumed = await graph.ainvoke(Command(resume="baz"), config, durability=durability)
    assert resumed == {"foo": "hi! foobaz"}


# test_pregel_async.py::test_subgraph_checkpoint_true_interrupt (a second parent run)
async def test_checkpointer_true_subgraph_called_in_a_node_keeps_values(saver: Any) -> None:
    graph = calls_baz(baz_subgraph(True)).compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"foo": "foo"}, config)
    await graph.ainvoke(Command(resume="baz"), config)
    await graph.ainvoke({"foo": "again"}, config)
    state = await graph.aget_state(config, subgraphs=True)
    assert state.tasks[0].state.values == {"bar": "hi! again", "baz": "baz"}


# test_time_travel.py::test_get_state_with_subgraphs_returns_subgraph_state
async def test_get_state_subgraphs_for_a_subgraph_called_in_a_node(saver: Any) -> None:
    graph = calls_baz(baz_subgraph(None)).compile(checkpointer=saver)
    config = cfg()
    await graph.ainvoke({"foo": "foo"}, config)
    state = await graph.aget_state(config, subgraphs=True)
    (task,) = state.tasks
    assert task.name == "node_2" and task.state is not None
    assert task.state.values == {"bar": "hi! foo"}
    assert task.state.next == ("subgraph_node_1",)
    assert [i.value for i in task.state.interrupts] == ["Provide baz value"]
    ns = task.state.config["configurable"]["checkpoint_ns"]
    assert ns == f"node_2:{task.id}"
    # without subgraphs=True, the task's state is the config to read it with, as LangGraph's
    plain = (await graph.aget_state(config)).tasks[0].state
    assert plain == {
        "configurable": {"thread_id": config["configurable"]["thread_id"], "checkpoint_ns": ns}
    }
    assert (await graph.aget_state(plain)).values == {"bar": "hi! foo"}
    assert await graph.ainvoke(Command(resume="baz"), config) == {"foo": "hi! foobaz"}
    assert (await graph.aget_state(config, subgraphs=True)).tasks == ()


# test_time_travel.py::test_get_state_with_subgraphs_returns_subgraph_state (a fresh graph
# object that never ran: the subgraph is found in the node function's closure)
async def test_get_state_subgraphs_from_another_graph_object(saver: Any) -> None:
    sub = baz_subgraph(None)
    config = cfg()
    await calls_baz(sub).compile(checkpointer=saver).ainvoke({"foo": "foo"}, config)
    other = calls_baz(sub).compile(checkpointer=saver)
    state = await other.aget_state(config, subgraphs=True)
    assert state.tasks[0].state.values == {"bar": "hi! foo"}


# test_subgraph_persistence_async.py::test_stateless_interrupt_resume_async
async def test_stateless_subgraph_pauses_and_resumes(saver: Any) -> None:
    seen: list[list[str]] = []
    parent = caller(echo("Processing", ask=True), seen, ["apples"]).compile(checkpointer=saver)
    config = cfg()
    paused = await parent.ainvoke({"result": ""}, config)
    assert paused["result"] == "" and [i.value for i in paused["__interrupt__"]] == ["continue?"]
    assert await parent.ainvoke(Command(resume=True), config) == {"result": "Done"}


# test_subgraph_persistence_async.py::test_stateless_state_resets_async
async def test_stateless_subgraph_state_resets(saver: Any) -> None:
    seen: list[list[str]] = []
    parent = caller(echo("Processing"), seen, ["apples", "bananas"]).compile(checkpointer=saver)
    config = cfg()
    assert await parent.ainvoke({"result": ""}, config) == {
        "result": "Processing: tell me about apples"
    }
    assert await parent.ainvoke({"result": ""}, config) == {
        "result": "Processing: tell me about bananas"
    }
    assert seen == [
        ["tell me about apples", "Processing: tell me about apples"],
        ["tell me about bananas", "Processing: tell me about bananas"],
    ]


# test_subgraph_persistence_async.py::test_stateless_state_resets_with_interrupt_async
async def test_stateless_subgraph_state_resets_with_interrupt(saver: Any) -> None:
    seen: list[list[str]] = []
    sub = echo("Processing", ask=True)
    parent = caller(sub, seen, ["apples", "bananas"]).compile(checkpointer=saver)
    config = cfg()
    for _ in range(2):
        assert "__interrupt__" in await parent.ainvoke({"result": ""}, config)
        assert await parent.ainvoke(Command(resume=True), config) == {"result": "Done"}
    assert seen == [
        ["tell me about apples", "Processing: tell me about apples", "Done"],
        ["tell me about bananas", "Processing: tell me about bananas", "Done"],
    ]


# test_subgraph_persistence_async.py::test_checkpointer_false_no_persistence_async
async def test_checkpointer_false_subgraph_starts_fresh(saver: Any) -> None:
    g = StateGraph(Chat)
    g.add_node(
        "echo", lambda s: {"messages": [AIMessage(f"Processed: {s['messages'][-1].content}")]}
    )
    g.add_edge(START, "echo")
    seen: list[list[str]] = []
    parent = caller(g.compile(checkpointer=False), seen, ["apples", "bananas"])
    app = parent.compile(checkpointer=saver)
    config = cfg()
    await app.ainvoke({"result": ""}, config)
    assert await app.ainvoke({"result": ""}, config) == {
        "result": "Processed: tell me about bananas"
    }
    assert seen[1] == ["tell me about bananas", "Processed: tell me about bananas"]


# test_subgraph_persistence_async.py::test_stateful_state_accumulates_async
async def test_stateful_subgraph_state_accumulates(saver: Any) -> None:
    seen: list[list[str]] = []
    sub = wrapped(echo("Processing"))
    parent = caller(sub, seen, ["apples", "bananas"]).compile(checkpointer=saver)
    config = cfg()
    await parent.ainvoke({"result": ""}, config)
    assert await parent.ainvoke({"result": ""}, config) == {
        "result": "Processing: tell me about bananas"
    }
    assert seen == [
        ["tell me about apples", "Processing: tell me about apples"],
        [
            "tell me about apples",
            "Processing: tell me about apples",
            "tell me about bananas",
            "Processing: tell me about bananas",
        ],
    ]


# test_subgraph_persistence_async.py::test_stateful_state_accumulates_with_interrupt_async
# and ::test_stateful_interrupt_resume_async
async def test_stateful_subgraph_accumulates_across_interrupts(saver: Any) -> None:
    seen: list[list[str]] = []
    sub = wrapped(echo("Processing", ask=True))
    parent = caller(sub, seen, ["apples", "bananas"]).compile(checkpointer=saver)
    config = cfg()
    for _ in range(2):
        paused = await parent.ainvoke({"result": ""}, config)
        assert [i.value for i in paused["__interrupt__"]] == ["continue?"]
        assert await parent.ainvoke(Command(resume=True), config) == {"result": "Done"}
    assert seen == [
        ["tell me about apples", "Processing: tell me about apples", "Done"],
        [
            "tell me about apples",
            "Processing: tell me about apples",
            "Done",
            "tell me about bananas",
            "Processing: tell me about bananas",
            "Done",
        ],
    ]


# test_subgraph_persistence_async.py::test_stateful_namespace_isolation_async
async def test_two_stateful_subgraphs_keep_separate_states(saver: Any) -> None:
    fruit = wrapped(echo("Fruit"), "fruit_agent")
    veggie = wrapped(echo("Veggie"), "veggie_agent")
    fruit_msgs: list[list[str]] = []
    veggie_msgs: list[list[str]] = []

    async def call_both(state: Parent) -> Parent:
        suffix = f"round {len(fruit_msgs) + 1}"
        f = await fruit.ainvoke({"messages": [HumanMessage(f"cherries {suffix}")]})
        v = await veggie.ainvoke({"messages": [HumanMessage(f"broccoli {suffix}")]})
        fruit_msgs.append(texts(f))
        veggie_msgs.append(texts(v))
        return {"result": f["messages"][-1].content}

    g = StateGraph(Parent)
    g.add_node("call_both", call_both)
    g.add_edge(START, "call_both")
    parent = g.compile(checkpointer=saver)
    config = cfg()
    assert await parent.ainvoke({"result": ""}, config) == {"result": "Fruit: cherries round 1"}
    assert await parent.ainvoke({"result": ""}, config) == {"result": "Fruit: cherries round 2"}
    assert fruit_msgs[1] == [
        "cherries round 1",
        "Fruit: cherries round 1",
        "cherries round 2",
        "Fruit: cherries round 2",
    ]
    assert veggie_msgs[1] == [
        "broccoli round 1",
        "Veggie: broccoli round 1",
        "broccoli round 2",
        "Veggie: broccoli round 2",
    ]


# test_subgraph_persistence_async.py::test_child_with_own_thread_id_keeps_namespace_async
async def test_child_with_its_own_thread_id_is_a_separate_thread(saver: Any) -> None:
    class Count(TypedDict, total=False):
        count: int

    c = StateGraph(Count)
    c.add_node("n", lambda s: {"count": (s.get("count") or 0) + 1})
    c.add_edge(START, "n")
    child = c.compile(checkpointer=saver)
    child_config = cfg()

    async def parent_node(state: Parent) -> Parent:
        await child.ainvoke({}, child_config)
        return {"result": "ok"}

    p = StateGraph(Parent)
    p.add_node("p", parent_node)
    p.add_edge(START, "p")
    parent = p.compile(checkpointer=saver)
    await parent.ainvoke({"result": ""}, cfg())
    await parent.ainvoke({"result": ""}, cfg())
    state = await child.aget_state(child_config)
    assert state.values == {"count": 2}
    assert state.config["configurable"]["checkpoint_ns"] == ""


# test_pregel.py::test_multiple_subgraphs_checkpointer
def test_a_nodes_second_subgraph_call_is_one_more_stream_level() -> None:
    from hitl_async import InMemorySaver

    class Counter(TypedDict):
        n: Annotated[int, operator.add]

    class Total(TypedDict):
        total: int

    kept = StateGraph(Counter).add_node("add_two", lambda s: {"n": 2})
    kept = kept.add_edge(START, "add_two").compile(checkpointer=True)
    fresh = StateGraph(Counter).add_node("add_three", lambda s: {"n": 3})
    fresh = fresh.add_edge(START, "add_three").compile()

    def both(state: Total) -> dict[str, Any]:
        first = kept.invoke({"n": state["total"]})
        return {"total": fresh.invoke({"n": first["n"]})["n"]}

    graph = StateGraph(Total).add_node("both", both).add_edge(START, "both")
    graph = graph.compile(checkpointer=InMemorySaver())
    config = cfg()
    assert graph.invoke({"total": 0}, config) == {"total": 5}
    assert graph.invoke({"total": 0}, config) == {"total": 7}  # kept's state lives on
    chunks = list(graph.stream({"total": 0}, cfg(), subgraphs=True))
    assert chunks[0] == (("both",), {"add_two": {"n": 2}})
    (task_level, call), second = chunks[1]
    assert task_level.startswith("both:") and call == "1"
    assert second == {"add_three": {"n": 3}}
    assert chunks[2] == ((), {"both": {"total": 5}})


# test_pregel.py::test_nested_graph_interrupts_parallel
@pytest.mark.parametrize("durability", ["sync", "exit"])
async def test_a_breakpoint_inside_a_subgraph_beside_a_parallel_node(
    saver: Any, durability: str
) -> None:
    def slow_1(state: Inner) -> dict[str, Any]:
        return {"my_key": "got here", "my_other_key": state["my_key"]}

    inner = StateGraph(Inner)
    inner.add_node("inner_1", slow_1)
    inner.add_node("inner_2", lambda s: {"my_key": " and there", "my_other_key": s["my_key"]})
    inner.add_edge(START, "inner_1")
    inner.add_edge("inner_1", "inner_2")

    class State(TypedDict):
        my_key: Annotated[str, operator.add]

    b = StateGraph(State)
    b.add_node("inner", inner.compile(interrupt_before=["inner_2"]))
    b.add_node("outer_1", lambda s: {"my_key": " and parallel"})
    b.add_node("outer_2", lambda s: {"my_key": " and back again"})
    b.add_edge(START, "inner")
    b.add_edge(START, "outer_1")
    b.add_edge(["inner", "outer_1"], "outer_2")
    app = b.compile(checkpointer=saver)
    one = cfg()
    # at the pause, the finished sibling's write is in the returned state
    assert await app.ainvoke({"my_key": ""}, one, durability=durability) == {
        "my_key": " and parallel"
    }
    assert await app.ainvoke(None, one, durability=durability) == {
        "my_key": "got here and there and parallel and back again"
    }
    two = cfg()
    chunks = [
        (ns[0].split(":")[0] if ns else (), c)
        async for ns, c in app.astream({"my_key": ""}, two, subgraphs=True, durability=durability)
    ]
    assert sorted(chunks[:2], key=lambda c: c[0] != ()) == [  # as each finished
        ((), {"outer_1": {"my_key": " and parallel"}}),
        ("inner", {"inner_1": {"my_key": "got here", "my_other_key": ""}}),
    ]
    assert chunks[2:] == [((), {"__interrupt__": ()})]  # said once, by the root
    assert [c async for c in app.astream(None, two, durability=durability)] == [
        {"outer_1": {"my_key": " and parallel"}, "__metadata__": {"cached": True}},
        {"inner": {"my_key": "got here and there"}},
        {"outer_2": {"my_key": " and back again"}},
    ]
