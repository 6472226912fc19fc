"""The LangChain Runnable methods of a compiled graph, each checked against what LangGraph
1.2.22 gives for the same calls (observed side by side): `with_config`, `batch`/`abatch`,
`get_name`, the schemas, `get_subgraphs`, the config a node sees, and `astream_events`."""

from __future__ import annotations

import operator
from typing import Annotated, Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from typing_extensions import TypedDict

from hitl_async import InMemorySaver, interrupt
from hitl_async.config import get_config
from hitl_async.graph import START, MessagesState, StateGraph

pytestmark = pytest.mark.anyio


class S(TypedDict):
    x: int
    log: Annotated[list[Any], operator.add]


class Ctx(TypedDict):
    user: str


def _seen(state: S, config: dict[str, Any]) -> dict[str, Any]:
    """Adds one to x and logs what the node's config carried."""
    return {
        "x": state["x"] + 1,
        "log": [(config["configurable"].get("k"), config["tags"], config["metadata"].get("m"))],
    }


def _graph(name: str = "mygraph") -> Any:
    sub = StateGraph(S)
    sub.add_node("inner", _seen)
    sub.add_edge(START, "inner")
    g = StateGraph(S, context_schema=Ctx)
    g.add_node("a", _seen)
    g.add_node("sub", sub.compile())
    g.add_edge(START, "a")
    g.add_edge("a", "sub")
    return g.compile(checkpointer=InMemorySaver(), name=name)


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def test_with_config_merges_under_each_call_and_leaves_the_graph_unchanged() -> None:
    app = _graph()
    bound = app.with_config(
        {"configurable": {"k": "v"}, "tags": ["t1"], "metadata": {"m": 1}}, recursion_limit=7
    )
    assert bound.config == {
        "configurable": {"k": "v"},
        "tags": ["t1"],
        "metadata": {"m": 1},
        "recursion_limit": 7,
    }
    assert app.config is None
    out = bound.invoke({"x": 0}, {**cfg("1"), "tags": ["t2"]})
    assert out["x"] == 2
    assert out["log"][0] == ("v", ["t1", "t2"], 1)
    # the same checkpointer: both see the thread
    assert app.get_state(cfg("1")).values["x"] == bound.get_state(cfg("1")).values["x"] == 2
    bound_thread = app.with_config(configurable={"thread_id": "bound"})
    bound_thread.invoke({"x": 10})
    assert app.get_state(cfg("bound")).values["x"] == 12


def test_a_node_and_get_config_see_langgraphs_per_task_metadata() -> None:
    seen: list[dict[str, Any]] = []

    def node(state: S, config: dict[str, Any]) -> dict[str, Any]:
        seen.extend([config, get_config()])
        return {}

    g = StateGraph(S)
    g.add_node("a", node)
    g.add_edge(START, "a")
    g.compile(checkpointer=InMemorySaver()).invoke(
        {"x": 1}, {"configurable": {"thread_id": "t", "user": "u"}, "metadata": {"m": 1}}
    )
    for config in seen:
        assert config["metadata"]["langgraph_node"] == "a"
        assert config["metadata"]["langgraph_step"] == 1
        assert config["metadata"]["thread_id"] == "t"
        assert config["metadata"]["m"] == 1
        assert config["tags"] == []
        assert config["configurable"]["user"] == "u"


def test_batch_runs_each_input_and_keeps_their_order() -> None:
    app = _graph()
    configs = [cfg("b1"), cfg("b2")]
    assert [o["x"] for o in app.batch([{"x": 1}, {"x": 5}], configs)] == [3, 7]
    mixed = app.batch([{"x": 1}, {"log": []}], [cfg("d1"), cfg("d2")], return_exceptions=True)
    assert mixed[0]["x"] == 3 and isinstance(mixed[1], KeyError)
    with pytest.raises(KeyError):
        app.batch([{"x": 1}, {"log": []}], [cfg("f1"), cfg("f2")])
    done = sorted(app.batch_as_completed([{"x": 1}, {"x": 5}], [cfg("e1"), cfg("e2")]))
    assert [(i, o["x"]) for i, o in done] == [(0, 3), (1, 7)]
    with pytest.raises(ValueError, match="2 inputs but 1 configs"):
        app.batch([{"x": 1}, {"x": 2}], [cfg("g1")])
    assert app.batch([]) == []


async def test_abatch_and_abatch_as_completed() -> None:
    app = _graph()
    outs = await app.abatch([{"x": 1}, {"x": 5}], [cfg("c1"), cfg("c2")])
    assert [o["x"] for o in outs] == [3, 7]
    got = [item async for item in app.abatch_as_completed([{"x": 0}], [cfg("c3")])]
    assert [(i, o["x"]) for i, o in got] == [(0, 2)]
    errors = await app.abatch([{"log": []}], [cfg("c4")], return_exceptions=True)
    assert isinstance(errors[0], KeyError)


def test_names_schemas_and_subgraphs() -> None:
    app = _graph()
    assert app.get_name() == "mygraph"
    assert app.get_name("Input") == "mygraph_input"
    assert _graph("Agent").get_name("Output") == "AgentOutput"
    expected = {
        "properties": {
            "x": {"title": "X", "type": "integer"},
            "log": {"items": {}, "title": "Log", "type": "array"},
        },
        "required": ["x", "log"],
        "title": "S",
        "type": "object",
    }
    assert app.get_input_jsonschema() == expected
    assert app.get_output_jsonschema() == expected
    assert app.get_context_jsonschema() == {
        "properties": {"user": {"title": "User", "type": "string"}},
        "required": ["user"],
        "title": "Ctx",
        "type": "object",
    }
    assert app.context_schema is Ctx
    assert app.input_schema.__name__ == "mygraph_input"
    assert set(app.input_schema.model_fields) == {"x", "log"}
    assert app.output_schema.__name__ == "mygraph_output"
    assert [name for name, _ in app.get_subgraphs()] == ["sub"]
    assert [name for name, _ in app.get_subgraphs(namespace="a")] == []


class _Chat(GenericFakeChatModel):
    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


async def test_astream_events_gives_langgraphs_tree_of_runs() -> None:
    model = _Chat(messages=iter([AIMessage("hi there"), AIMessage("again")]))

    async def call(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def after(state: MessagesState) -> dict[str, Any]:
        return {}

    g = StateGraph(MessagesState)
    g.add_node("call", call)
    g.add_node("after", after)
    g.add_edge(START, "call")
    g.add_edge("call", "after")
    app = g.compile(checkpointer=InMemorySaver())
    events = [
        e async for e in app.astream_events({"messages": [("user", "yo")]}, cfg("1"), version="v2")
    ]
    shape = [(e["event"], e["name"], len(e["parent_ids"]), e["tags"]) for e in events]
    model_name = "_Chat"
    assert shape == [
        ("on_chain_start", "LangGraph", 0, []),
        ("on_chain_start", "call", 1, ["graph:step:1"]),
        ("on_chat_model_start", model_name, 2, ["seq:step:1"]),
        ("on_chat_model_stream", model_name, 2, ["seq:step:1"]),
        ("on_chat_model_stream", model_name, 2, ["seq:step:1"]),
        ("on_chat_model_stream", model_name, 2, ["seq:step:1"]),
        ("on_chat_model_end", model_name, 2, ["seq:step:1"]),
        ("on_chain_stream", "call", 1, ["graph:step:1"]),
        ("on_chain_end", "call", 1, ["graph:step:1"]),
        ("on_chain_stream", "LangGraph", 0, []),
        ("on_chain_start", "after", 1, ["graph:step:2"]),
        ("on_chain_stream", "after", 1, ["graph:step:2"]),
        ("on_chain_end", "after", 1, ["graph:step:2"]),
        ("on_chain_stream", "LangGraph", 0, []),
        ("on_chain_end", "LangGraph", 0, []),
    ]
    tokens = "".join(
        e["data"]["chunk"].content
        for e in events
        if e["event"].endswith("stream") and e["event"].startswith("on_chat")
    )
    assert tokens == "hi there"
    node_meta = events[1]["metadata"]
    assert node_meta["langgraph_node"] == "call" and node_meta["thread_id"] == "1"
    assert events[9]["data"]["chunk"] == {"call": {"messages": [events[6]["data"]["output"]]}}
    final = events[-1]["data"]["output"]
    assert [m.content for m in final["messages"]] == ["yo", "hi there"]
    filtered = [
        e["event"]
        async for e in app.astream_events(
            {"messages": [("user", "again")]}, cfg("2"), version="v2", include_names=["after"]
        )
    ]
    assert filtered == ["on_chain_start", "on_chain_stream", "on_chain_end"]


async def test_astream_events_of_a_run_that_pauses_ends_the_graph_run() -> None:
    def ask(state: S) -> dict[str, Any]:
        return {"x": interrupt("ok?")}

    g = StateGraph(S)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    app = g.compile(checkpointer=InMemorySaver())
    events = [e async for e in app.astream_events({"x": 0, "log": []}, cfg("p"), version="v2")]
    assert events[-1]["event"] == "on_chain_end" and events[-1]["name"] == "LangGraph"
    assert events[-1]["data"]["output"] == {"x": 0, "log": []}  # the state, as LangGraph
    streamed = [e["data"]["chunk"] for e in events if e["event"] == "on_chain_stream"]
    assert any("__interrupt__" in chunk for chunk in streamed if isinstance(chunk, dict))
    assert (await app.aget_state(cfg("p"))).next == ("ask",)


async def test_astream_events_nests_a_subgraph_run_under_its_node() -> None:
    app = _graph()
    events = [e async for e in app.astream_events({"x": 0}, cfg("sub"), version="v2")]
    starts = [
        (e["name"], len(e["parent_ids"]), e["tags"])
        for e in events
        if e["event"] == "on_chain_start"
    ]
    assert starts == [
        ("mygraph", 0, []),
        ("a", 1, ["graph:step:1"]),
        ("sub", 1, ["graph:step:2"]),
        ("LangGraph", 2, ["seq:step:1"]),  # the subgraph's own run, under its node's
        ("inner", 3, ["graph:step:1"]),
    ]
    history = [s async for s in app.aget_state_history(cfg("sub"))]
    first = history[-1].tasks[0]
    assert (first.name, first.path) == ("__start__", ("__pregel_pull", "__start__"))


def test_with_config_keeps_the_node_cache() -> None:
    """Found by the ported agent ticket_service: a `with_config` copy lost `compile(cache=)`."""
    from hitl_async.cache.memory import InMemoryCache
    from hitl_async.types import CachePolicy

    calls: list[int] = []

    def slow(state: S) -> dict[str, Any]:
        calls.append(state["x"])
        return {"x": state["x"] * 10}

    g = StateGraph(S)
    g.add_node("slow", slow, cache_policy=CachePolicy())
    g.add_edge(START, "slow")
    app = g.compile(cache=InMemoryCache())
    assert app.invoke({"x": 3})["x"] == 30
    bound = app.with_config(tags=["t"])
    assert bound.cache is app.cache
    chunks = list(bound.stream({"x": 3}, stream_mode="updates"))
    assert chunks == [{"slow": {"x": 30}, "__metadata__": {"cached": True}}]
    assert calls == [3]


async def test_astream_events_shows_no_node_chunks_of_a_subgraph_run_by_sync_invoke() -> None:
    """Found by the ported agent nested_streams: LangGraph streams a subgraph's nodes only when
    the subgraph runs through `astream`/`ainvoke`, not through a node's sync `invoke()`."""
    inner = StateGraph(S)
    inner.add_node("inner", _seen)
    inner.add_edge(START, "inner")
    sub = inner.compile()

    def calls_sync(state: S) -> dict[str, Any]:
        return {"x": sub.invoke({"x": state["x"]})["x"]}

    async def calls_async(state: S) -> dict[str, Any]:
        return {"x": (await sub.ainvoke({"x": state["x"]}))["x"]}

    for node, expected in ((calls_sync, ["outer"]), (calls_async, ["inner", "outer"])):
        g = StateGraph(S)
        g.add_node("outer", node)
        g.add_edge(START, "outer")
        events = [e async for e in g.compile().astream_events({"x": 0}, version="v2")]
        streamed = [e["name"] for e in events if e["event"] == "on_chain_stream"]
        assert streamed == [*expected, "LangGraph"]
