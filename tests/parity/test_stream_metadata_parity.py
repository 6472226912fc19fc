"""What the `messages` stream's metadata holds, and subgraph updates delivered while the parent's
step still runs, restated from LangGraph's tests (LangGraph 1.2.22's behaviour)."""

from __future__ import annotations

import operator
import threading
from typing import Annotated, Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from typing_extensions import TypedDict

from hitl_async import Command, InMemorySaver, Send
from hitl_async.graph import END, START, MessagesState, StateGraph, add_messages


def task_metadata(node: str, step: int, **extra: Any) -> dict[str, Any]:
    """A root task's metadata in the `messages` stream, without its checkpoint namespace."""
    return {
        **extra,
        "ls_integration": "langgraph",
        "langgraph_step": step,
        "langgraph_node": node,
        "langgraph_triggers": (f"branch:to:{node}",),
        "langgraph_path": ("__pregel_pull", node),
    }


def split(chunks: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(content, metadata without the namespace) of each chunk; checks the namespace's form."""
    out = []
    for message, metadata in chunks:
        ns = metadata.pop("langgraph_checkpoint_ns")
        assert ns.startswith(f"{metadata['langgraph_node']}:") and "|" not in ns
        out.append((message.content, metadata))
    return out


# test_pregel.py::test_stream_mode_messages_command
def test_messages_written_by_commands_are_streamed() -> None:
    def plain(state: MessagesState) -> dict[str, Any]:
        return {"messages": HumanMessage(content="foo")}

    def command(state: MessagesState) -> Command[Any]:
        return Command(update={"messages": HumanMessage(content="bar")})

    def command_list(state: MessagesState) -> list[Command[Any]]:
        return [Command(update={"messages": HumanMessage(content="baz")})]

    b = StateGraph(MessagesState).add_sequence([plain, command, command_list])
    graph = b.add_edge(START, "plain").compile()
    chunks = list(graph.stream({"messages": []}, stream_mode="messages"))
    assert all(isinstance(m, HumanMessage) and m.id for m, _ in chunks)
    assert split(chunks) == [
        ("foo", task_metadata("plain", 1)),
        ("bar", task_metadata("command", 2)),
        ("baz", task_metadata("command_list", 3)),
    ]


# test_pregel.py::test_configurable_propagates_to_stream_metadata
def test_ids_in_the_configurable_reach_the_messages_metadata() -> None:
    def node(state: MessagesState) -> dict[str, Any]:
        return {"messages": HumanMessage(content="hello")}

    graph = StateGraph(MessagesState).add_node("node", node).add_edge(START, "node").compile()
    ids = {
        "thread_id": "th-1",
        "checkpoint_id": "ck-1",
        "checkpoint_ns": "ns-1",  # copied as metadata; the root run's namespace stays ""
        "task_id": "task-1",
        "run_id": "run-1",
        "assistant_id": "asst-1",
        "graph_id": "graph-1",
    }
    others = {"model": "m", "user_id": "u", "an_api_key": "secret", "nested": {"a": True}}
    config = {"configurable": {**ids, **others}}
    chunks = list(graph.stream({"messages": []}, config, stream_mode="messages"))
    assert split(chunks) == [("hello", task_metadata("node", 1, **ids))]


def test_metadata_given_in_the_config_wins_over_the_configurable() -> None:
    seen: list[dict[str, Any]] = []

    def node(state: MessagesState, config: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(config["metadata"]))
        return {"messages": AIMessage(content="hi")}

    graph = StateGraph(MessagesState).add_node("node", node).add_edge(START, "node").compile()
    config = {"configurable": {"thread_id": "t", "run_id": "r"}, "metadata": {"run_id": "mine"}}
    ((_, metadata),) = list(graph.stream({"messages": []}, config, stream_mode="messages"))
    assert (metadata["run_id"], metadata["thread_id"]) == ("mine", "t")
    assert seen[0]["run_id"] == "mine" and "ls_integration" not in seen[0]


def test_sent_tasks_have_push_paths_in_their_metadata() -> None:
    class Fan(TypedDict, total=False):
        messages: Annotated[list[Any], add_messages]
        i: int

    def worker(state: Fan) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"w{state['i']}", id=f"w{state['i']}")]}

    b = StateGraph(Fan)
    b.add_node("start", lambda s: {})
    b.add_node("worker", worker)
    b.add_edge(START, "start")
    b.add_conditional_edges(
        "start", lambda s: [Send("worker", {"i": i}) for i in range(2)], ["worker"]
    )
    graph = b.compile(checkpointer=InMemorySaver())
    chunks = graph.stream(
        {"messages": []}, {"configurable": {"thread_id": "1"}}, stream_mode="messages"
    )
    got = sorted((m.content, md["langgraph_triggers"], md["langgraph_path"]) for m, md in chunks)
    assert got == [
        ("w0", ("__pregel_push",), ("__pregel_push", 0, False)),
        ("w1", ("__pregel_push",), ("__pregel_push", 1, False)),
    ]


class Inner(TypedDict):
    my_key: Annotated[str, operator.add]
    my_other_key: str


class Outer(TypedDict):
    my_key: Annotated[str, operator.add]


# test_pregel.py::test_stream_subgraphs_during_execution (ordered by events, not by sleeps)
def test_subgraph_updates_arrive_while_the_parent_step_runs() -> None:
    inner_1_seen = threading.Event()  # set by the consumer
    parallel_done = threading.Event()

    def inner_2(state: Inner) -> dict[str, Any]:
        assert parallel_done.wait(10)
        return {"my_key": " and there", "my_other_key": state["my_key"]}

    def parallel(state: Outer) -> dict[str, Any]:
        # finishes only after the consumer got inner_1's update: it must come mid-step
        assert inner_1_seen.wait(10)
        parallel_done.set()
        return {"my_key": " and parallel"}

    inner = StateGraph(Inner)
    inner.add_node("inner_1", lambda s: {"my_key": "got here", "my_other_key": s["my_key"]})
    inner.add_node("inner_2", inner_2)
    inner.add_edge(START, "inner_1")
    inner.add_edge("inner_1", "inner_2")
    inner.add_edge("inner_2", END)
    b = StateGraph(Outer)
    b.add_node("inner", inner.compile())
    b.add_node("parallel", parallel)
    b.add_node("after", lambda s: {"my_key": " and back again"})
    b.add_edge(START, "inner")
    b.add_edge(START, "parallel")
    b.add_edge(["inner", "parallel"], "after")
    graph = b.compile(checkpointer=InMemorySaver())
    chunks = []
    for ns, chunk in graph.stream(
        {"my_key": ""}, {"configurable": {"thread_id": "2"}}, subgraphs=True
    ):
        chunks.append((ns[0].split(":")[0] if ns else (), chunk))
        if "inner_1" in chunk:
            inner_1_seen.set()
    assert chunks == [
        ("inner", {"inner_1": {"my_key": "got here", "my_other_key": ""}}),
        ((), {"parallel": {"my_key": " and parallel"}}),
        ("inner", {"inner_2": {"my_key": " and there", "my_other_key": "got here"}}),
        ((), {"inner": {"my_key": "got here and there"}}),
        ((), {"after": {"my_key": " and back again"}}),
    ]


@pytest.mark.anyio
async def test_subgraph_updates_arrive_while_the_parent_step_runs_async() -> None:
    import anyio

    inner_1_seen = anyio.Event()
    parallel_done = anyio.Event()

    async def inner_2(state: Inner) -> dict[str, Any]:
        with anyio.fail_after(10):
            await parallel_done.wait()
        return {"my_key": " and there", "my_other_key": state["my_key"]}

    async def parallel(state: Outer) -> dict[str, Any]:
        with anyio.fail_after(10):
            await inner_1_seen.wait()
        parallel_done.set()
        return {"my_key": " and parallel"}

    inner = StateGraph(Inner)
    inner.add_node("inner_1", lambda s: {"my_key": "got here", "my_other_key": s["my_key"]})
    inner.add_node("inner_2", inner_2)
    inner.add_edge(START, "inner_1")
    inner.add_edge("inner_1", "inner_2")
    b = StateGraph(Outer)
    b.add_node("inner", inner.compile())
    b.add_node("parallel", parallel)
    b.add_edge(START, "inner")
    b.add_edge(START, "parallel")
    graph = b.compile(checkpointer=InMemorySaver())
    order = []
    async for ns, chunk in graph.astream(
        {"my_key": ""}, {"configurable": {"thread_id": "3"}}, subgraphs=True
    ):
        order.append((len(ns), next(iter(chunk))))
        if "inner_1" in chunk:
            inner_1_seen.set()
    assert order == [(1, "inner_1"), (0, "parallel"), (1, "inner_2"), (0, "inner")]


class Chat(TypedDict):
    messages: Annotated[list[Any], add_messages]


# test_messages_state.py::test_push_messages_in_graph
def test_pushed_messages_reach_the_stream_and_the_state() -> None:
    from hitl_async.graph.message import push_message

    refused: list[str] = []

    def chat(state: Chat) -> None:
        try:
            push_message(AIMessage(content="no id"))
        except ValueError as e:
            refused.append(str(e))
        push_message(AIMessage(content="First", id="1"))
        push_message(HumanMessage(content="Second", id="2"))
        push_message(AIMessage(content="Third", id="3"))

    graph = StateGraph(Chat).add_node("chat", chat).add_edge(START, "chat").compile()
    streamed, values = [], None
    for mode, chunk in graph.stream({"messages": []}, stream_mode=["messages", "values"]):
        if mode == "values":
            values = chunk
        else:
            streamed.append(chunk[0])
    assert refused and "Message ID is required" in refused[0]
    assert values is not None and values["messages"] == streamed
    assert [m.id for m in streamed] == ["1", "2", "3"]
    # without a messages stream the state still gets them
    out = graph.invoke({"messages": []})
    assert [m.content for m in out["messages"]] == ["First", "Second", "Third"]


# test_pregel.py::test_tags_stream_mode_messages
def test_model_tokens_carry_the_tasks_namespace_and_the_models_tags() -> None:
    from langchain_core.language_models import GenericFakeChatModel

    model = GenericFakeChatModel(messages=iter(["foo"]), tags=["meow"])
    graph = StateGraph(MessagesState)
    graph.add_node("call_model", lambda s: {"messages": model.invoke(s["messages"])})
    graph = graph.add_edge(START, "call_model").compile()
    ((message, metadata),) = list(graph.stream({"messages": "hi"}, stream_mode="messages"))
    assert message.content == "foo" and metadata["tags"] == ["meow"]
    assert metadata["checkpoint_ns"] == metadata["langgraph_checkpoint_ns"]
    assert metadata["checkpoint_ns"].startswith("call_model:")
    assert (metadata["ls_provider"], metadata["ls_model_type"]) == ("genericfakechatmodel", "chat")
