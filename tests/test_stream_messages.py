"""`hitl_async.stream_messages`: the `messages` stream's handler, driven through a run's
callbacks (the engine adds it for `stream_mode="messages"`); tokens of langchain-core's
GenericFakeChatModel, node outputs, LangGraph's metadata keys, `nostream`, subgraphs, and the
arrival times of tokens a model streams while its node is still running."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableLambda

from hitl_async import InMemorySaver
from hitl_async.graph import START, MessagesState, StateGraph
from hitl_async.stream_messages import (
    MessagesEmitter,
    graph_namespace,
    messages_handler,
    with_handler,
)

TASK_KEYS = {
    "thread_id",
    "langgraph_step",
    "langgraph_node",
    "langgraph_triggers",
    "langgraph_path",
    "langgraph_checkpoint_ns",
}


class Recorder:
    """The emit callable: every `(namespace, (message, metadata))` with its arrival time."""

    def __init__(self) -> None:
        self.events: list[tuple[tuple[str, ...], Any, dict[str, Any], float]] = []

    def __call__(self, ns: tuple[str, ...], item: tuple[Any, dict[str, Any]]) -> None:
        self.events.append((ns, item[0], item[1], time.monotonic()))

    @property
    def texts(self) -> list[str]:
        return [m.content for _, m, _, _ in self.events]


def run(graph: Any, inputs: Any, *, subgraphs: bool = False, **config: Any) -> Recorder:
    recorder = Recorder()
    handler = messages_handler(MessagesEmitter(recorder, subgraphs=subgraphs))
    cfg = with_handler({"configurable": {"thread_id": "t"}, **config}, handler)
    graph.invoke(inputs, cfg)
    return recorder


def fake(text: str, **kwargs: Any) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(text)]), **kwargs)


def one_node(fn: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("agent", fn)
    builder.add_edge(START, "agent")
    return builder.compile(checkpointer=InMemorySaver())


def test_a_model_invoked_inside_a_sync_node_streams_its_tokens() -> None:
    model = fake("hello big world")
    recorder = run(
        one_node(lambda s: {"messages": [model.invoke(s["messages"])]}), {"messages": "hi"}
    )
    assert recorder.texts == ["hello", " ", "big", " ", "world"]
    assert all(isinstance(m, AIMessageChunk) for _, m, _, _ in recorder.events)
    assert len({m.id for _, m, _, _ in recorder.events}) == 1  # one message, streamed
    _, _, meta, _ = recorder.events[0]
    assert set(meta) >= TASK_KEYS
    assert meta["langgraph_node"] == "agent" and meta["langgraph_step"] == 1
    assert meta["langgraph_triggers"] == ("branch:to:agent",)
    assert meta["langgraph_path"] == ("__pregel_pull", "agent")
    assert meta["langgraph_checkpoint_ns"].startswith("agent:")
    assert meta["thread_id"] == "t"
    assert meta["ls_provider"] == "genericfakechatmodel" and meta["ls_model_type"] == "chat"


def test_an_async_node_streams_and_its_output_is_not_repeated() -> None:
    model = fake("a b")

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    recorder = run(one_node(agent), {"messages": "hi"})
    assert recorder.texts == ["a", " ", "b"]


def test_messages_a_node_returns_are_emitted_once_input_never() -> None:
    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("written", id="w1"), state["messages"][0]]}

    recorder = run(one_node(agent), {"messages": [HumanMessage("hi", id="h1")]})
    assert [(m.id, m.content) for _, m, _, _ in recorder.events] == [("w1", "written")]
    assert recorder.events[0][2]["langgraph_node"] == "agent"
    assert "ls_provider" not in recorder.events[0][2]


def test_nostream_models_are_not_streamed_token_by_token() -> None:
    loud, quiet = fake("x y"), fake("secret", tags=["nostream"])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [loud.invoke(state["messages"]), quiet.invoke(state["messages"])]}

    recorder = run(one_node(agent), {"messages": "hi"})
    # LangGraph's behaviour: the quiet model's message still arrives once, as the node's output
    assert recorder.texts == ["x", " ", "y", "secret"]
    assert isinstance(recorder.events[-1][1], AIMessage)


def test_user_tags_of_the_model_are_in_the_metadata_for_filtering() -> None:
    model = fake("t", tags=["summary-model"])
    recorder = run(
        one_node(lambda s: {"messages": [model.invoke(s["messages"])]}),
        {"messages": "hi"},
        tags=["run-tag"],
    )
    assert sorted(recorder.events[0][2]["tags"]) == ["run-tag", "summary-model"]


def test_runnable_nodes_stream_too() -> None:
    model = fake("r s")
    chain = RunnableLambda(lambda s: {"messages": [model.invoke(s["messages"])]})
    recorder = run(one_node(chain), {"messages": "hi"})
    assert recorder.texts == ["r", " ", "s"]


def subgraph_parent(model: Any) -> Any:
    inner = StateGraph(MessagesState)
    inner.add_node("inner_agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    inner.add_edge(START, "inner_agent")
    outer = StateGraph(MessagesState)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "sub")
    return outer.compile(checkpointer=InMemorySaver())


def test_subgraph_tokens_only_when_subgraphs_are_streamed() -> None:
    # As in LangGraph: without subgraphs, the subgraph node's output arrives as one message
    flat = run(subgraph_parent(fake("deep two")), {"messages": "hi"})
    assert [(ns, type(m), m.content) for ns, m, _, _ in flat.events] == [
        ((), AIMessage, "deep two")
    ]
    assert flat.events[0][2]["langgraph_node"] == "sub"
    recorder = run(subgraph_parent(fake("deep two")), {"messages": "hi"}, subgraphs=True)
    assert recorder.texts == ["deep", " ", "two"]
    ns, _, meta, _ = recorder.events[0]
    assert ns == graph_namespace(meta) and len(ns) == 1 and ns[0].startswith("sub:")
    assert meta["langgraph_node"] == "inner_agent"


class SlowModel(GenericFakeChatModel):
    """Streams its message word by word, 0.3 s apart."""

    def _stream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        for word in ("one", "two", "three", "four"):
            time.sleep(0.3)
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
            if run_manager is not None:
                run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_tokens_reach_the_emitter_as_the_model_streams_them(kind: str) -> None:
    model = SlowModel(messages=iter([]))

    def sync_agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def async_agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    started = time.monotonic()
    recorder = run(one_node(sync_agent if kind == "sync" else async_agent), {"messages": "hi"})
    words = [(m.content, t - started) for _, m, _, t in recorder.events if m.content]
    assert [w for w, _ in words] == ["one", "two", "three", "four"]
    arrivals = [t for _, t in words]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(0.15 < gap < 0.9 for gap in gaps), arrivals  # ~0.3 s apart, not all at the end


def test_with_handler_keeps_the_callbacks_already_there() -> None:
    class Other(BaseCallbackHandler):
        pass

    other = Other()
    emitter = MessagesEmitter(Recorder())
    handler = messages_handler(emitter)
    assert with_handler({"callbacks": [other]}, handler)["callbacks"] == [other, handler]
    assert with_handler({}, handler)["callbacks"] == [handler]


# -- through stream(stream_mode="messages") ------------------------------------------------------


def test_stream_mode_messages_with_updates_in_langgraph_order() -> None:
    model = fake("hello world")

    def call(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node(call)
    builder.add_node("writer", lambda s: {"messages": [AIMessage("direct", id="d1")]})
    builder.add_edge(START, "call")
    builder.add_edge("call", "writer")
    graph = builder.compile(checkpointer=InMemorySaver())
    seen = []
    for mode, chunk in graph.stream(
        {"messages": "hi"},
        {"configurable": {"thread_id": "s"}},
        stream_mode=["messages", "updates"],
    ):
        if mode == "messages":
            message, meta = chunk
            seen.append(("messages", message.content, meta["langgraph_node"]))
        else:
            seen.append(("updates", next(iter(chunk))))
    assert [s for s in seen if s[0] == "updates" or s[1]] == [
        ("messages", "hello", "call"),
        ("messages", " ", "call"),
        ("messages", "world", "call"),
        ("updates", "call"),
        ("messages", "direct", "writer"),
        ("updates", "writer"),
    ]


def test_stream_mode_messages_with_subgraphs_yields_namespaces() -> None:
    graph = subgraph_parent(fake("deep two"))
    events = list(
        graph.stream(
            {"messages": "hi"},
            {"configurable": {"thread_id": "s2"}},
            stream_mode="messages",
            subgraphs=True,
        )
    )
    texts = [(ns, m.content) for ns, (m, _) in events if m.content]
    assert [t for _, t in texts] == ["deep", " ", "two"]
    assert all(len(ns) == 1 and ns[0].startswith("sub:") for ns, _ in texts)


def test_without_langchain_core_messages_written_by_nodes_stream() -> None:
    code = (
        "import sys\n"
        "sys.modules['langchain_core'] = None  # as if not installed\n"
        "import operator\n"
        "from typing import Annotated\n"
        "from typing_extensions import TypedDict\n"
        "from hitl_async.graph import START, StateGraph\n"
        "class S(TypedDict):\n"
        "    messages: Annotated[list, operator.add]\n"
        "b = StateGraph(S)\n"
        "b.add_node('bot', lambda s: {'messages': [{'role': 'assistant', 'content': 'hi'}]})\n"
        "b.add_edge(START, 'bot')\n"
        "for m, meta in b.compile().stream({'messages': []}, stream_mode='messages'):\n"
        "    print(m['content'], meta['langgraph_node'], 'id' in m)\n"
    )
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["hi", "bot", "True"]
