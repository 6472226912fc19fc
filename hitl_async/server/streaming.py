"""`stream_to_log`: run a run's graph and append what it streams to the run's log, each chunk
as LangGraph's server sends it (event names carrying the namespace, debug checkpoints naming
their refs, `messages` as message events, `stream_mode="events"` through `astream_events`),
written in batches. The run executor calls it; apart from it because shaping the stream is a
concept of its own, independent of claiming and finishing runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from hitl_async.server.encoding import dumps
from hitl_async.server.messages import MessageEvents
from hitl_async.server.records import RecordStore, RunRecord
from hitl_async.server.runs import engine_modes

__all__ = ["stream_to_log"]


async def stream_to_log(
    records: RecordStore,
    run: RunRecord,
    graph: Any,
    run_input: Any,
    config: Any,
    context: dict[str, Any] | None,
) -> None:
    """Run the graph, appending its streamed chunks to the run's log: a writer task sends
    whatever has accumulated in one call, so a burst of events costs one round trip."""
    kwargs = run.kwargs
    client_modes = kwargs.get("stream_mode") or ["values"]
    modes = engine_modes(client_modes)
    messages = MessageEvents(set(client_modes))
    options: dict[str, Any] = {
        "stream_mode": modes or ["values"],
        "subgraphs": True,
        "interrupt_before": kwargs.get("interrupt_before"),
        "interrupt_after": kwargs.get("interrupt_after"),
        "durability": kwargs.get("durability"),
        "context": context,
    }
    send, receive = anyio.create_memory_object_stream[tuple[str, str]](1 << 16)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_write_events, records, run.run_id, receive)
        async with send:
            if "events" in client_modes:
                items = _with_events(run, graph, run_input, config, options, send)
            else:
                items = graph.astream(run_input, config, **options)
            async for item in items:
                namespace, mode, chunk = item
                if not modes or (namespace and not kwargs.get("subgraphs")):
                    continue
                if mode == "messages":
                    suffix = "".join(f"|{part}" for part in namespace)
                    for pair in messages.events(chunk, suffix):
                        await send.send(pair)
                    continue
                if mode == "debug":
                    chunk = _with_checkpoint_refs(chunk)
                await send.send((_event_name(mode, tuple(namespace)), dumps(chunk)))


async def _with_events(
    run: RunRecord,
    graph: Any,
    run_input: Any,
    config: dict[str, Any],
    options: dict[str, Any],
    send: MemoryObjectSendStream[tuple[str, str]],
) -> AsyncIterator[Any]:
    """`stream_mode="events"`: run the graph through its `astream_events` (LangChain's v2
    events, the graph's chain run carrying the run's id), send every event but the graph's
    own chunks, and yield those chunks — the other modes' `(namespace, mode, chunk)`
    items — as `astream` would, as LangGraph's server does."""
    root = {**config, "run_id": uuid.UUID(run.run_id)}
    async for event in graph.astream_events(run_input, root, version="v2", **options):
        chunk = event.get("data", {}).get("chunk")
        name = event.get("event")
        if name == "on_chain_stream" and event.get("run_id") == run.run_id:
            if isinstance(chunk, tuple):
                yield chunk
            continue
        if name == "on_chain_end" and event.get("run_id") == run.run_id:
            event = _without_interrupts(event)
        await send.send(("events", dumps(event)))


async def _write_events(
    records: RecordStore, run_id: str, receive: MemoryObjectReceiveStream[tuple[str, str]]
) -> None:
    """Append the events `receive` gets to the run's log, each call with all that came
    meanwhile."""
    async with receive:
        async for first in receive:
            batch = [first]
            while True:
                try:
                    batch.append(receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            await records.append_events(run_id, batch)


def _without_interrupts(event: dict[str, Any]) -> dict[str, Any]:
    """The graph's `on_chain_end` with its output's `__interrupt__` left out, as LangGraph's
    graph output has none (the interrupts come in the `updates`/`values` events)."""
    output = event.get("data", {}).get("output")
    if not isinstance(output, dict) or "__interrupt__" not in output:
        return event
    kept = {k: v for k, v in output.items() if k != "__interrupt__"}
    return {**event, "data": {**event["data"], "output": kept}}


def _event_name(mode: str, namespace: tuple[str, ...]) -> str:
    name = "messages" if mode == "messages" else mode
    return "|".join((name, *namespace)) if namespace else name


def _ref(config: Any) -> dict[str, Any] | None:
    conf = config.get("configurable") if isinstance(config, dict) else None
    if not isinstance(conf, dict) or not conf.get("checkpoint_id"):
        return None
    return {
        "checkpoint_id": conf["checkpoint_id"],
        "thread_id": conf.get("thread_id"),
        "checkpoint_ns": conf.get("checkpoint_ns", ""),
    }


def _with_checkpoint_refs(chunk: Any) -> Any:
    """A debug checkpoint event as LangGraph's server sends it: its payload also names the
    checkpoint and its parent as `{checkpoint_id, thread_id, checkpoint_ns}`, and a subgraph
    task's `state` config becomes its `checkpoint` (the config's `configurable`)."""
    if not isinstance(chunk, dict) or chunk.get("type") != "checkpoint":
        return chunk
    payload = chunk.get("payload")
    if not isinstance(payload, dict):
        return chunk
    refs: dict[str, Any] = {
        "checkpoint": _ref(payload.get("config")),
        "parent_checkpoint": _ref(payload.get("parent_config")),
    }
    if isinstance(payload.get("tasks"), list):
        refs["tasks"] = [_debug_task(t) for t in payload["tasks"]]
    return {**chunk, "payload": {**payload, **refs}}


def _debug_task(task: Any) -> Any:
    state = task.get("state") if isinstance(task, dict) else None
    if not isinstance(state, dict) or not state.get("configurable"):
        return task
    return {**{k: v for k, v in task.items() if k != "state"}, "checkpoint": state["configurable"]}
