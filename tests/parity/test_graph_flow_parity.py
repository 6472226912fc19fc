"""Parity with LangGraph: control flow and node input schemas — a conditional entry point,
a waiting edge reached through a conditional edge, nodes typed with their own input schema
(which add their keys to the graph), and a failing node cancelling its running siblings —
restated from LangGraph's `test_pregel_async.py`, on
every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import END, START, Send, StateGraph
from hitl_async.graph import add_messages

pytestmark = pytest.mark.anyio


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


class Route(TypedDict, total=False):
    input: str
    output: str
    steps: Annotated[list[str], operator.add]


# test_pregel_async.py::test_conditional_entrypoint_graph_state: the entry router reads the
# state the input made (reducer defaults included) and its path_map picks the first node.
async def test_conditional_entry_point_routes_on_the_input_state(saver: Any) -> None:
    seen: list[Any] = []

    def start_at(s: Route) -> str:
        seen.append(s["steps"])
        return "long" if len(s["input"]) > 10 else "short"

    g = StateGraph(Route)
    g.add_node("left", lambda s: {"output": s["input"] + "->left"})
    g.add_node("right", lambda s: {"output": s["input"] + "->right"})
    g.set_conditional_entry_point(start_at, {"short": "left", "long": "right"})
    g.add_conditional_edges("left", lambda s: END)
    g.add_edge("right", END)
    app = g.compile(checkpointer=saver)
    question = "what is weather in sf"
    assert await app.ainvoke({"input": question}, cfg()) == {
        "input": question,
        "output": question + "->right",
        "steps": [],
    }
    assert [c async for c in app.astream({"input": "hi"}, cfg())] == [
        {"left": {"output": "hi->left"}}
    ]
    assert seen == [[], []]


def sorted_add(x: list[str], y: list[str]) -> list[str]:
    return sorted(operator.add(x, y))


class Docs(TypedDict, total=False):
    query: str
    answer: str
    docs: Annotated[list[str], sorted_add]


def retrieval(saver: Any, **compile: Any) -> Any:
    """rewrite → (analyze → retrieve_one) and, through a conditional edge, retrieve_two; qa
    waits for both retrievers. retrieve_two finishes after analyze (it waits for it)."""
    analyzed = anyio.Event()

    async def analyze(s: Docs) -> Docs:
        analyzed.set()
        return {"query": f"analyzed: {s['query']}"}

    async def retrieve_two(s: Docs) -> Docs:
        await analyzed.wait()
        return {"docs": ["doc3", "doc4"]}

    g = StateGraph(Docs)
    g.add_node("rewrite", lambda s: {"query": f"query: {s['query']}"})
    g.add_node("analyze", analyze)
    g.add_node("retrieve_one", lambda s: {"docs": ["doc1", "doc2"]})
    g.add_node("retrieve_two", retrieve_two)
    g.add_node("qa", lambda s: {"answer": ",".join(s["docs"])})
    g.set_entry_point("rewrite")
    g.add_edge("rewrite", "analyze")
    g.add_edge("analyze", "retrieve_one")
    g.add_conditional_edges("rewrite", lambda _: "two", {"two": "retrieve_two"})
    g.add_edge(["retrieve_one", "retrieve_two"], "qa")
    g.set_finish_point("qa")
    return g.compile(checkpointer=saver, **compile)


# test_pregel_async.py::test_in_one_fan_out_state_graph_waiting_edge_via_branch: a waiting
# edge whose one source is reached through a conditional edge runs qa once, after both; with
# interrupt_after on one retriever the run stops after that step and `None` continues it.
async def test_waiting_edge_reached_through_a_branch(saver: Any) -> None:
    question = "what is weather in sf"
    updates = [
        {"rewrite": {"query": f"query: {question}"}},
        {"analyze": {"query": f"analyzed: query: {question}"}},
        {"retrieve_two": {"docs": ["doc3", "doc4"]}},
        {"retrieve_one": {"docs": ["doc1", "doc2"]}},
    ]
    app = retrieval(saver)
    assert await app.ainvoke({"query": question}, cfg()) == {
        "query": f"analyzed: query: {question}",
        "docs": ["doc1", "doc2", "doc3", "doc4"],
        "answer": "doc1,doc2,doc3,doc4",
    }
    assert [c async for c in retrieval(saver).astream({"query": question}, cfg())] == [
        *updates,
        {"qa": {"answer": "doc1,doc2,doc3,doc4"}},
    ]
    paused = retrieval(saver, interrupt_after=["retrieve_one"])
    config = cfg()
    assert [c async for c in paused.astream({"query": question}, config)] == [
        *updates,
        {"__interrupt__": ()},
    ]
    assert [c async for c in paused.astream(None, config)] == [
        {"qa": {"answer": "doc1,doc2,doc3,doc4"}}
    ]


class Chat(TypedDict):
    hello: str
    bye: str
    messages: Annotated[list[Any], add_messages]


class ChatOut(TypedDict):
    messages: list[Any]


class ForA(TypedDict):
    hello: str
    messages: Annotated[list[Any], add_messages]


class ForB(TypedDict):
    bye: str
    now: int


class ForC(TypedDict):
    hello: str
    now: int


# test_pregel_async.py::test_node_schemas_custom_output: each node sees only the keys of the
# schema its parameter is annotated with; a key only a node schema has (`now`) is a channel
# of the graph that other nodes read, but not input the caller can set (not in the input
# schema) nor output (output_schema); a node returning None shows as `{"a": None}`.
async def test_node_input_schemas_and_custom_output(saver: Any) -> None:
    seen: list[Any] = []

    def node_a(s: ForA) -> None:
        seen.append(("a", {**s, "messages": [m.content for m in s["messages"]]}))

    def node_b(s: ForB) -> dict[str, Any]:
        seen.append(("b", dict(s)))
        return {"now": 123, "hello": "again"}

    def node_c(s: ForC) -> None:
        seen.append(("c", dict(s)))

    g = StateGraph(Chat, output_schema=ChatOut)
    g.add_node("a", node_a)
    g.add_node("b", node_b)
    g.add_node("c", node_c)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    app = g.compile(checkpointer=saver)
    given = {"hello": "there", "bye": "world", "messages": "hello", "now": 345}
    out = await app.ainvoke(given, cfg())
    assert [m.content for m in out["messages"]] == ["hello"] and list(out) == ["messages"]
    assert seen == [
        ("a", {"hello": "there", "messages": ["hello"]}),
        ("b", {"bye": "world"}),
        ("c", {"hello": "again", "now": 123}),
    ]
    assert [c async for c in app.astream(given, cfg())] == [
        {"a": None},
        {"b": {"hello": "again", "now": 123}},
        {"c": None},
    ]


class Hello(TypedDict):
    hello: str


# test_pregel_async.py::test_node_cancellation_on_other_node_exception (and _two): a node that
# fails cancels its siblings still running in the step; the caller sees the node's error, and
# the cancelled sibling is still to run (the step is retried whole).
async def test_a_failing_node_cancels_its_running_siblings(saver: Any) -> None:
    cancelled: list[bool] = []
    started = anyio.Event()

    async def forever(s: Hello) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.append(True)
            raise

    async def bad(s: Hello) -> None:
        await started.wait()
        raise ValueError("I am bad")

    g = StateGraph(Hello)
    g.add_node("agent", forever)
    g.add_node("bad", bad)
    g.set_conditional_entry_point(lambda _: ["agent", "bad"])
    app = g.compile(checkpointer=saver)
    config = cfg()
    with pytest.raises(ValueError, match="I am bad"):
        await app.ainvoke({"hello": "world"}, config)
    assert cancelled == [True]
    assert set((await app.aget_state(config)).next) == {"agent", "bad"}


# test_pregel_async.py::test_max_concurrency
async def test_max_concurrency_bounds_the_tasks_of_a_step_running_at_once() -> None:
    running = {"now": 0, "most": 0}

    async def work(item: int) -> list[Any]:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await anyio.sleep(0)  # let the others in
        await anyio.sleep(0)
        running["now"] -= 1
        return [item]

    g = StateGraph(Annotated[list, operator.add])
    g.add_node("one", lambda s: ["1"])
    g.add_node("work", work)
    g.add_node("three", lambda s: ["3"])
    g.add_edge(START, "one")
    g.add_conditional_edges("one", lambda s: [Send("work", i) for i in range(30)])
    g.add_edge("work", "three")
    graph = g.compile()
    assert await graph.ainvoke(["0"]) == ["0", "1", *range(30), "3"]
    assert running["most"] == 30
    running["most"] = 0
    assert await graph.ainvoke(["0"], {"max_concurrency": 4}) == ["0", "1", *range(30), "3"]
    assert running == {"now": 0, "most": 4}


class Overall(TypedDict, total=False):
    foo: Annotated[int, operator.add]
    bar: str


class RouterView(TypedDict):
    baz: str


class SecondView(TypedDict):
    foo: Annotated[int, operator.add]
    baz: str


# test_state.py::test_private_input_schema_conditional_edge
def test_a_router_with_its_own_input_schema_sees_only_its_keys() -> None:
    seen: list[Any] = []

    def first(state: Overall) -> dict[str, Any]:
        return {"foo": 1, "baz": "meow"}

    def second(state: SecondView) -> dict[str, Any]:
        return {"foo": 1, "bar": state["baz"]}

    def router(state: RouterView) -> str:
        seen.append(state)
        return "second" if state["baz"] == "meow" else END

    g = StateGraph(Overall)
    g.add_node("first", first)
    g.add_node("second", second)
    g.add_edge(START, "first")
    g.add_conditional_edges("first", router)
    assert g.compile().invoke({"foo": 0}) == {"foo": 2, "bar": "meow"}
    assert seen == [{"baz": "meow"}]


class Question(TypedDict):
    question: str


class WithFoo(Question):
    foo: str


class Answer(TypedDict):
    input_state: Question


# test_state.py::test_state_schema_with_type_hint (a callable object as a node)
def test_a_callable_object_is_named_after_its_class_and_typed_by_its_call() -> None:
    class Echo:
        def __call__(self, state: WithFoo) -> dict[str, Any]:
            assert state.pop("foo") == "bar"
            return {"input_state": state}

    g = StateGraph(Question, output_schema=Answer)
    g.add_node("pre", lambda s: {"foo": "bar"})
    g.add_node(Echo())
    g.add_edge(START, "pre")
    g.add_edge("pre", "Echo")
    assert list(g.compile().nodes) == ["pre", "Echo"]
    assert g.compile().invoke({"question": "what"}) == {"input_state": {"question": "what"}}
