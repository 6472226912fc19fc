"""Per-task context reachable from inside a node: `interrupt()`, the stream writer, the config."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from hitl_async._checkpoint import now_iso
from hitl_async.constants import CONF, CONFIG_KEY_NODE_FINISHED
from hitl_async.errors import CheckpointerRequiredError, GraphInterrupt
from hitl_async.types import Interrupt, StreamWriter

__all__ = [
    "NodeCalls",
    "Scratchpad",
    "active_scratchpad",
    "current_scratchpad",
    "get_config",
    "get_stream_writer",
    "graph_state",
    "interrupt_id",
    "no_heartbeat",
    "no_writer",
    "node_finished",
    "task_pad",
]


_SCRATCHPAD: ContextVar[Scratchpad | None] = ContextVar("hitl_async_scratchpad", default=None)


def interrupt_id(task_id: str, index: int) -> str:
    """Id of the `index`-th interrupt of a task: stable across reruns, unique per call."""
    return hashlib.blake2b(f"{task_id}:{index}".encode(), digest_size=16).hexdigest()


def no_writer(_: Any) -> None:
    """The stream writer of a task whose run does not stream `custom`: drops what it gets."""
    return None


def no_heartbeat() -> None:
    """`runtime.heartbeat` outside an attempt with an `idle_timeout`: nothing to refresh."""
    return None


class NodeCalls(Protocol):
    """The `@task` calls a graph node's attempt started (`_task_calls`), for its end."""

    async def join(self) -> tuple[Interrupt, ...]:
        """Wait for those still running (LangGraph's step waits for them); the interrupts of
        those that paused."""

    def cancel(self) -> None:
        """Cancel those still running (the attempt failed or was cancelled)."""

    def late_events(self) -> list[Callable[[], None]]:
        """What emits the events of those that ended after the node did (after the node's)."""


@dataclass(slots=True)
class Scratchpad:
    """What a running task knows about itself."""

    task_id: str
    node: str
    config: dict[str, Any]
    resume: list[Any]
    durable: bool
    answers: dict[str, Any] = field(default_factory=dict)
    """All answers given to this task, by interrupt id (subgraphs pass them down)."""
    run: Any = None
    """The run the task belongs to (for subgraphs started from the task)."""
    in_subgraph: bool = False
    subgraph_calls: int = 0
    raised_before: dict[str, Interrupt] = field(default_factory=dict)
    """Interrupts this task raised in an earlier run, by id."""
    writer: StreamWriter = no_writer
    counter: int = 0
    results: dict[int, Any] = field(default_factory=dict)
    """Results of this task's `@task` calls kept from earlier runs, by call index."""
    save_result: Callable[[int, Any, list[tuple[str, Any]]], Awaitable[None]] | None = None
    """Persist a `@task` call's result (and its state writes) at once, so a later pause or
    crash does not redo it."""
    kept_writes: dict[int, list[tuple[str, Any]]] = field(default_factory=dict)
    """State writes of the kept `@task` call results (`results`), by call index."""
    extras: dict[str, Any] = field(default_factory=dict)
    alone: bool = False
    """The only task running in its step (a sync node may then run in the loop's thread)."""
    sent: list[tuple[str, Any]] = field(default_factory=list)
    """State writes made from inside the running attempt (`hitl_async.graph.ui`), applied
    before those of the node's return value, as LangGraph applies its config's `send`."""
    heartbeat: Callable[[], None] = no_heartbeat
    """`runtime.heartbeat`: refreshes the running attempt's `idle_timeout` (`_timeouts`)."""
    node_error: Any = None
    """The `NodeError` an error-handler task is given (`_error_handlers`)."""
    attempt: int = 1
    """Which attempt of the node is running (retries count up from 1)."""
    first_attempt_at: float | None = None
    """When the node's first attempt started (`time.time()`)."""
    call_sent: list[tuple[str, Any]] = field(default_factory=list)
    """State writes made inside the `@task` calls of a graph node (`push_ui_message` in a
    task): applied after the node's own writes and not shown as its update, as LangGraph
    applies them as writes of tasks of their own."""
    node_calls: NodeCalls | None = None
    """The `@task` calls of the running attempt of a graph node, once it made one."""

    def interrupt(
        self,
        value: Any,
        timeout: float | None = None,
        on_timeout: Any = None,
        response_schema: dict[str, Any] | None = None,
    ) -> Any:
        index = self.counter
        self.counter += 1
        if index < len(self.resume):
            return self.resume[index]
        if not self.durable:
            raise CheckpointerRequiredError(self.node)
        iid = interrupt_id(self.task_id, index)
        if iid in self.answers:
            return self.answers[iid]
        earlier = self.raised_before.get(iid)
        if earlier is not None:  # the same pause again: keep when it started and its deadline
            created, deadline = earlier.created_at, earlier.deadline
        else:
            created = now_iso()
            deadline = time.time() + timeout if timeout is not None else None
        raise GraphInterrupt(
            [
                Interrupt(
                    value,
                    iid,
                    created_at=created,
                    deadline=deadline,
                    on_timeout=on_timeout,
                    response_schema=response_schema,
                )
            ]
        )


def task_pad(run: Any, t: Any, step: int, **fields: Any) -> Scratchpad:
    """The scratchpad of task `t` of `run`, running in step `step`; `fields` add to or replace
    what every task's has (`task_id`, `node`: of another task run for `t`, e.g. its handler)."""
    return Scratchpad(
        task_id=fields.pop("task_id", t.id),
        node=fields.pop("node", t.name),
        config=run.config,
        resume=t.resume,
        answers=t.answers,
        run=run,
        in_subgraph=run.parent is not None,
        durable=run.saver is not None,
        writer=run.writer,
        raised_before={i.id: i for i in t.raised or ()},
        extras={"path": t.path, "step": step},
        **fields,
    )


def active_scratchpad() -> Scratchpad | None:
    """The scratchpad of the task running in this context, if any."""
    return _SCRATCHPAD.get()


def graph_state() -> dict[str, Any] | None:
    """The state keys of the running task's graph as its step began (None outside a graph):
    for code that is not given the state, such as a ToolNode sent a bare list of tool calls
    (LangGraph's reads its graph's channels then)."""
    pad = _SCRATCHPAD.get()
    if pad is None or pad.run is None:
        return None
    state: dict[str, Any] = pad.run.plan.state_values(pad.run.cp.values)
    return state


def current_scratchpad(what: str) -> Scratchpad:
    pad = _SCRATCHPAD.get()
    if pad is None:
        raise RuntimeError(f"{what}() can only be called from inside a running graph node or task")
    return pad


def set_scratchpad(pad: Scratchpad | None) -> Any:
    return _SCRATCHPAD.set(pad)


def reset_scratchpad(token: Any) -> None:
    _SCRATCHPAD.reset(token)


def get_stream_writer() -> StreamWriter:
    """The writer of the current task: what it is called with is streamed in `"custom"` mode."""
    pad = _SCRATCHPAD.get()
    return pad.writer if pad is not None else no_writer


def get_config() -> dict[str, Any]:
    """The config the current task sees: its run's config with LangGraph's per-task
    `metadata` (`langgraph_node`, `langgraph_step`...) and `tags`."""
    from hitl_async.runnables import node_config

    return node_config(current_scratchpad("get_config"))


def node_finished(config: dict[str, Any], name: str) -> None:
    """Tell the config's `__pregel_node_finished` callback (LangGraph's
    `CONFIG_KEY_NODE_FINISHED`, which servers use to follow a run) that a node or a `@task`
    call completed; a subgraph's nodes tell it too, the config being inherited."""
    configurable = config.get(CONF)
    if configurable:
        callback = configurable.get(CONFIG_KEY_NODE_FINISHED)
        if callback is not None and callable(callback):
            callback(name)
