"""Live streaming: events reach `astream`/`stream` as they happen (custom writes while the node
runs, a task's update as it finishes), memory stays bounded when the consumer is slow, and a
consumer that stops early leaves the thread resumable with its lease released.

Arrival is measured with generous margins: events written 0.3 s apart must arrive spread out
like that, not all at the end of the node."""

from __future__ import annotations

import gc
import itertools
import operator
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Annotated, Any

import anyio
import pytest
from typing_extensions import TypedDict

from hitl_async import InMemorySaver, StateGraph, ThreadBusyError, connect
from hitl_async.config import get_stream_writer
from hitl_async.func import entrypoint, task
from hitl_async.graph import START

GAP = 0.3
WRITES = 4


class S(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


def cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def sync_writer(state: S) -> dict[str, Any]:
    write = get_stream_writer()
    for i in range(WRITES):
        time.sleep(GAP)
        write(i)
    return {"x": 1}


async def async_writer(state: S) -> dict[str, Any]:
    write = get_stream_writer()
    for i in range(WRITES):
        await anyio.sleep(GAP)
        write(i)
    return {"x": 1}


def one_node(fn: Callable[..., Any]) -> Any:
    b = StateGraph(S)
    b.add_node("writer", fn)
    b.add_edge(START, "writer")
    return b.compile(checkpointer=InMemorySaver())


def in_subgraph(fn: Callable[..., Any]) -> Any:
    inner = StateGraph(S)
    inner.add_node("writer", fn)
    inner.add_edge(START, "writer")
    outer = StateGraph(S)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "sub")
    return outer.compile(checkpointer=InMemorySaver())


@task
def slow_step(i: int) -> int:
    time.sleep(GAP)
    get_stream_writer()({"step": i})
    return i


@entrypoint(checkpointer=InMemorySaver())
def workflow(n: int) -> list[int]:
    return [slow_step(i).result() for i in range(n)]


def assert_spread(arrivals: list[float]) -> None:
    """`WRITES` events written `GAP` apart arrived about `GAP` apart, the first long before
    the last was written."""
    assert len(arrivals) == WRITES, arrivals
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(GAP * 0.4 < g < GAP * 3 for g in gaps), arrivals
    assert arrivals[0] < arrivals[-1] - GAP * (WRITES - 1) * 0.5, arrivals


async def arrivals(stream: AsyncIterator[Any], keep: Callable[[Any], bool]) -> list[float]:
    start = time.monotonic()
    out = []
    async for event in stream:
        if keep(event):
            out.append(time.monotonic() - start)
    return out


def is_custom(event: Any) -> bool:
    return isinstance(event, tuple) and event[-2] == "custom"


# -- arrival ---------------------------------------------------------------------------------------


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
@pytest.mark.parametrize("fn", [sync_writer, async_writer], ids=["sync node", "async node"])
async def test_custom_events_arrive_while_the_node_runs(fn: Callable[..., Any]) -> None:
    graph = one_node(fn)
    stream = graph.astream({"x": 0}, cfg("live"), stream_mode=["custom", "updates"])
    assert_spread(await arrivals(stream, is_custom))


@pytest.mark.anyio
@pytest.mark.parametrize("fn", [sync_writer, async_writer], ids=["sync node", "async node"])
async def test_custom_events_of_a_subgraph_node_arrive_live(fn: Callable[..., Any]) -> None:
    graph = in_subgraph(fn)
    stream = graph.astream({"x": 0}, cfg("sub"), stream_mode=["custom"], subgraphs=True)
    events: list[Any] = []

    def keep(event: Any) -> bool:
        events.append(event)
        return is_custom(event)

    assert_spread(await arrivals(stream, keep))
    assert all(ns and ns[0].startswith("sub:") for ns, _, _ in events)


@pytest.mark.anyio
async def test_task_updates_of_an_entrypoint_arrive_as_each_task_finishes() -> None:
    stream = workflow.astream(WRITES, cfg("tasks"), stream_mode=["updates", "custom"])
    seen: list[Any] = []

    def keep(event: Any) -> bool:
        seen.append(event)
        return event[0] == "updates" and "slow_step" in event[1]

    assert_spread(await arrivals(stream, keep))
    customs = [chunk for mode, chunk in seen if mode == "custom"]
    assert customs == [{"step": i} for i in range(WRITES)]


@pytest.mark.anyio
async def test_parallel_tasks_report_as_each_finishes() -> None:
    def slow(state: S) -> dict[str, Any]:
        time.sleep(GAP * 3)
        return {"log": ["slow"]}

    async def swift(state: S) -> dict[str, Any]:
        return {"log": ["swift"]}

    b = StateGraph(S)
    b.add_node("swift", swift)
    b.add_node("slow", slow)
    b.add_edge(START, "slow")
    b.add_edge(START, "swift")
    graph = b.compile(checkpointer=InMemorySaver())
    start = time.monotonic()
    got = [(c, time.monotonic() - start) async for c in graph.astream({"log": []}, cfg("par"))]
    assert [c for c, _ in got] == [{"swift": {"log": ["swift"]}}, {"slow": {"log": ["slow"]}}]
    assert got[1][1] - got[0][1] > GAP * 2  # swift's update did not wait for slow
    # the state is still written in LangGraph's order (by node name), not finish order
    assert (await graph.aget_state(cfg("par"))).values["log"] == ["slow", "swift"]


def test_sync_stream_yields_live() -> None:
    graph = one_node(sync_writer)
    start = time.monotonic()
    got = [time.monotonic() - start for _ in graph.stream({"x": 0}, cfg("s"), stream_mode="custom")]
    assert_spread(got)


def test_sync_stream_of_an_entrypoint_yields_live() -> None:
    start = time.monotonic()
    got = [
        time.monotonic() - start
        for chunk in workflow.stream(WRITES, cfg("sync-tasks"), stream_mode="updates")
        if "slow_step" in chunk
    ]
    assert_spread(got)


# -- backpressure ----------------------------------------------------------------------------------

MANY = 3000


def counting_sync_writer(written: list[int]) -> Callable[..., Any]:
    def node(state: S) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(MANY):
            written[0] = i
            write(i)
        return {"x": 1}

    return node


def counting_async_writer(written: list[int]) -> Callable[..., Any]:
    async def node(state: S) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(MANY):
            written[0] = i
            write(i)
            if i % 10 == 0:
                await anyio.sleep(0)
        return {"x": 1}

    return node


@pytest.mark.anyio
@pytest.mark.parametrize(
    "make", [counting_sync_writer, counting_async_writer], ids=["sync node", "async node"]
)
async def test_a_slow_consumer_holds_the_producer_back(make: Callable[..., Any]) -> None:
    """The node cannot get more than a bounded number of events ahead of the consumer."""
    written = [0]
    graph = one_node(make(written))
    ahead = 0
    received = 0
    async with aclosing(graph.astream({"x": 0}, cfg("slow"), stream_mode="custom")) as stream:
        async for i in stream:
            assert i == received
            received += 1
            ahead = max(ahead, written[0] - i)
            if i % 50 == 0:
                await anyio.sleep(0.01)  # a slow consumer
    assert received == MANY
    assert ahead < 600, ahead  # the buffer's bound (256) plus what was in flight


# -- stopping early --------------------------------------------------------------------------------


def two_steps() -> StateGraph:
    """first (x+1) -> talk (custom events, then x*10): stopping during `talk` leaves next=talk."""

    def first(state: S) -> dict[str, Any]:
        return {"x": state["x"] + 1}

    async def talk(state: S) -> dict[str, Any]:
        write = get_stream_writer()
        for i in range(50):
            write(i)
            await anyio.sleep(0.02)
        return {"x": state["x"] * 10}

    b = StateGraph(S)
    b.add_node("first", first)
    b.add_node("talk", talk)
    b.add_edge(START, "first")
    b.add_edge("first", "talk")
    return b


async def resumable_and_free(graph: Any, thread: str) -> None:
    """The thread paused before `talk`, its lease is free (retrying while a closed stream is
    still being finalized), and it runs to the end from there."""
    with anyio.fail_after(10):
        while True:
            try:
                state = await graph.aget_state(cfg(thread))
                if state.next == ("talk",):
                    result = await graph.ainvoke(None, cfg(thread))
                    break
            except ThreadBusyError:
                pass
            await anyio.sleep(0.05)
    assert state.values["x"] == 2
    assert result["x"] == 20


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["aclosing", "garbage collected"])
async def test_a_consumer_that_stops_early_leaves_the_thread_resumable(
    anyio_backend: str, how: str, tmp_path: Path
) -> None:
    for store in (InMemorySaver(), connect(f"sqlite:///{tmp_path / f'{how}.db'}")):
        graph = two_steps().compile(checkpointer=store)
        stream = graph.astream({"x": 1}, cfg("stop"), stream_mode=["custom", "updates"])
        if how == "aclosing":
            async with aclosing(stream):
                async for mode, _ in stream:
                    if mode == "custom":
                        break
        else:
            async for mode, _ in stream:
                if mode == "custom":
                    break
            del stream
            gc.collect()
        await resumable_and_free(graph, "stop")
        await store.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # PostgreSQL and Redis need asyncio
async def test_stopping_early_on_every_driver(saver: Any) -> None:
    graph = two_steps().compile(checkpointer=saver)
    async with aclosing(graph.astream({"x": 1}, cfg("drv"), stream_mode="custom")) as stream:
        async for _ in stream:
            break
    await resumable_and_free(graph, "drv")


def test_closing_the_sync_iterator_cancels_the_run(tmp_path: Path) -> None:
    for store in (InMemorySaver(), connect(f"sqlite:///{tmp_path / 'sync.db'}")):
        graph = two_steps().compile(checkpointer=store)
        events: Iterator[Any] = graph.stream({"x": 1}, cfg("sync"), stream_mode="custom")
        assert next(events) == 0
        events.close()  # type: ignore[attr-defined]
        state = graph.get_state(cfg("sync"))
        assert state.next == ("talk",) and state.values["x"] == 2
        assert graph.invoke(None, cfg("sync"))["x"] == 20


# -- the registry of modes and the hook for new ones ----------------------------------------------


def test_every_stream_mode_is_registered() -> None:
    from typing import get_args

    from hitl_async._events import STREAM_MODES
    from hitl_async.types import StreamMode

    assert set(STREAM_MODES) == set(get_args(StreamMode))


def test_task_emitter_streams_from_a_worker_thread_only_when_asked() -> None:
    from hitl_async._events import task_emitter

    found: list[bool] = []

    def node(state: S) -> dict[str, Any]:
        emit = task_emitter("custom")
        found.append(emit is not None)
        if emit is not None:
            emit({"from": threading.current_thread().name})
        return {"x": 1}

    graph = one_node(node)
    events = list(graph.stream({"x": 0}, cfg("emit"), stream_mode=["custom", "updates"]))
    assert events[0][0] == "custom" and events[0][1]["from"] != "MainThread"
    assert list(graph.stream({"x": 0}, cfg("emit2"))) == [{"writer": {"x": 1}}]
    assert found == [True, False]


# -- chat model tokens -----------------------------------------------------------------------------


def slow_model() -> Any:
    """A langchain-core chat model streaming four words `GAP` apart."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessageChunk
    from langchain_core.outputs import ChatGenerationChunk

    class SlowModel(GenericFakeChatModel):
        def _stream(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
        ) -> Iterator[ChatGenerationChunk]:
            for word in ("one", "two", "three", "four"):
                time.sleep(GAP)
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=word))
                if run_manager is not None:
                    run_manager.on_llm_new_token(word, chunk=chunk)
                yield chunk

    return SlowModel(messages=iter([]))


def chat_graph(kind: str) -> Any:
    from hitl_async.graph import MessagesState

    model = slow_model()

    def sync_agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def async_agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    b = StateGraph(MessagesState)
    b.add_node("agent", sync_agent if kind == "sync" else async_agent)
    b.add_edge(START, "agent")
    return b.compile(checkpointer=InMemorySaver())


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "anyio_backend"),
    [("sync", "asyncio"), ("sync", "trio"), ("async", "asyncio")],  # LangChain's async: asyncio
)
async def test_chat_model_tokens_arrive_as_the_model_streams_them(kind: str) -> None:
    graph = chat_graph(kind)
    stream = graph.astream({"messages": "hi"}, cfg(f"chat-{kind}"), stream_mode="messages")
    words: list[str] = []

    def keep(event: Any) -> bool:
        message, metadata = event
        if message.content and metadata["langgraph_node"] == "agent":
            words.append(message.content)
            return len(words) <= WRITES  # the tokens, not the node's whole output after them
        return False

    assert_spread(await arrivals(stream, keep))
    assert words[:WRITES] == ["one", "two", "three", "four"]


def test_chat_model_tokens_arrive_live_through_the_sync_stream() -> None:
    graph = chat_graph("sync")
    start = time.monotonic()
    got = [
        time.monotonic() - start
        for message, _ in graph.stream({"messages": "hi"}, cfg("chat"), stream_mode="messages")
        if message.content in ("one", "two", "three", "four")
    ]
    assert_spread(got)
