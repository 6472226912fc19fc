"""Runnables as nodes (`hitl_async.runnables`): anything with `invoke`/`ainvoke` is a node, and
nodes run with a LangChain-compatible config, so LangChain callbacks and tracing work inside."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda
from typing_extensions import TypedDict

from hitl_async import Command, InMemorySaver, interrupt
from hitl_async.graph import END, START, StateGraph


class S(TypedDict, total=False):
    x: int
    seen: dict[str, Any]


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[tuple[str, list[str], dict[str, Any]]] = []
        self.ends: list[Any] = []
        self.errors: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
        self.starts.append((kw.get("name", ""), kw.get("tags") or [], kw.get("metadata") or {}))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.ends.append(outputs)

    def on_chain_error(self, error: BaseException, **kw: Any) -> None:
        self.errors.append(type(error).__name__)


class OnlyInvoke:
    name = "only_invoke"

    def invoke(self, state: S, config: dict[str, Any]) -> dict[str, Any]:
        return {"x": state["x"] * 10, "seen": {"configurable": sorted(config["configurable"])}}


class OnlyAinvoke:
    async def ainvoke(self, state: S, config: dict[str, Any]) -> dict[str, Any]:
        return {"x": state["x"] + 1, "seen": {"node": config["metadata"]["langgraph_node"]}}


def chain(*nodes: tuple[str, Any]) -> Any:
    builder = StateGraph(S)
    previous = START
    for name, node in nodes:
        builder.add_node(name, node)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=InMemorySaver())


def test_any_object_with_invoke_or_ainvoke_is_a_node() -> None:
    graph = chain(
        ("lam", RunnableLambda(lambda s: {"x": s["x"] + 1})),
        ("sync", OnlyInvoke()),
        ("async", OnlyAinvoke()),
    )
    out = graph.invoke({"x": 1}, {"configurable": {"thread_id": "r1"}})
    assert out == {"x": 21, "seen": {"node": "async"}}
    builder = StateGraph(S)
    builder.add_node(OnlyInvoke())  # named after its `name`
    assert "only_invoke" in builder.nodes


def test_a_runnable_gets_configurable_tags_metadata_and_callbacks() -> None:
    got: dict[str, Any] = {}

    def inspect_config(state: S, config: dict[str, Any]) -> dict[str, Any]:
        got.update(config)
        return {"x": 1}

    recorder = Recorder()
    graph = chain(("r", RunnableLambda(inspect_config)))
    graph.invoke(
        {"x": 0},
        {
            "configurable": {"thread_id": "r2", "user": "ada"},
            "tags": ["mine"],
            "metadata": {"team": "ops"},
            "callbacks": [recorder],
        },
    )
    assert got["configurable"]["user"] == "ada"
    assert "mine" in got["tags"]
    assert got["metadata"]["team"] == "ops" and got["metadata"]["langgraph_node"] == "r"
    names = [name for name, _, _ in recorder.starts]
    # the graph's run (as LangGraph's), the node's inside it, then the Runnable's inside that
    assert names[:3] == ["LangGraph", "r", "inspect_config"]
    _, tags, meta = recorder.starts[1]
    assert "mine" in tags
    assert meta["langgraph_step"] == 1 and meta["thread_id"] == "r2"
    assert meta["langgraph_path"] == ("__pregel_pull", "r")


def test_function_nodes_run_as_chain_runs_when_callbacks_are_given() -> None:
    recorder = Recorder()

    def ask(state: S) -> dict[str, Any]:
        return {"x": interrupt("ok?")}

    graph = chain(("first", lambda s: {"x": 5}), ("ask", ask))
    config = {"configurable": {"thread_id": "r3"}, "callbacks": [recorder]}
    graph.invoke({"x": 0}, config)
    assert [name for name, _, _ in recorder.starts] == ["LangGraph", "first", "ask"]
    assert recorder.ends == [{"x": 5}, {"x": 5}]  # first's, then the graph's (as LangGraph's)
    assert recorder.errors == ["GraphInterrupt"]  # the pause ends the node's run, as in LangGraph
    assert graph.invoke(Command(resume=7), config)["x"] == 7
