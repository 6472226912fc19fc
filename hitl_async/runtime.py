"""`Runtime`: what a node may ask for besides the state, mirroring `langgraph.runtime`.

A node declares a `runtime` parameter to receive it: the run's `context` (passed as
`invoke(..., context=...)` and typed by `StateGraph(..., context_schema=...)`), the store given to
`compile(store=...)`, the stream writer, and the thread id; `heartbeat()` refreshes the node's
`idle_timeout`, `control` is the run's `RunControl` (cooperative draining), `execution_info`
says which task, checkpoint and attempt is running, and `server_info` which assistant and user
a server run is for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from hitl_async._runtime import Scratchpad, current_scratchpad, no_heartbeat, no_writer
from hitl_async.types import StreamWriter

__all__ = ["ExecutionInfo", "RunControl", "Runtime", "ServerInfo", "get_runtime"]

C = TypeVar("C")


class RunControl:
    """Asks a run to stop at its next superstep boundary (`request_drain()`, say on SIGTERM):
    the run saves its checkpoint and raises `GraphDrained`; `invoke(None, config)` continues
    it. Pass one as `invoke(..., control=...)`; a node sees its run's as `runtime.control`.
    One per run (a drained control stays drained); safe to call from any thread."""

    __slots__ = ("_drain_reason",)

    def __init__(self) -> None:
        self._drain_reason: str | None = None

    def request_drain(self, reason: str = "shutdown") -> None:
        """Stop the run before its next superstep; `reason` is `GraphDrained.reason`."""
        self._drain_reason = reason

    @property
    def drain_requested(self) -> bool:
        return self._drain_reason is not None

    @property
    def drain_reason(self) -> str | None:
        return self._drain_reason


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """Which execution a node is: its task, the checkpoint its step runs from, its attempt
    (as LangGraph's `runtime.execution_info`, e.g. to log or make idempotency keys)."""

    checkpoint_id: str
    """The checkpoint the task's step runs from ("" when the run stores nothing)."""
    checkpoint_ns: str
    """The task's own namespace: `node:task_id`, under its subgraph's (`a:id|b:id`)."""
    task_id: str
    thread_id: str | None = None
    run_id: str | None = None
    """The config's `run_id`, as a str (None when it has none)."""
    node_attempt: int = 1
    """Which attempt of the node this is (1, then 2, 3... on retries)."""
    node_first_attempt_time: float | None = None
    """When the first attempt started (`time.time()`)."""

    @classmethod
    def of_task(cls, pad: Scratchpad) -> ExecutionInfo:
        """The execution info of the task whose scratchpad is `pad` (in a run)."""
        run = pad.run
        own = f"{pad.node}:{pad.task_id}"
        run_id = run.config.get("run_id")
        return cls(
            checkpoint_id=run.cp.checkpoint_id or "",
            checkpoint_ns=f"{run.ns}|{own}" if run.ns else own,
            task_id=pad.task_id,
            thread_id=run.thread_id,
            run_id=None if run_id is None else str(run_id),
            node_attempt=pad.attempt,
            node_first_attempt_time=pad.first_attempt_at,
        )

    def patch(self, **overrides: Any) -> ExecutionInfo:
        """A copy with `overrides` (field=value) applied."""
        return replace(self, **overrides)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """The assistant, graph and authenticated user a run served by a server is for, read from
    the config's `configurable` (`assistant_id`, `graph_id`, `langgraph_auth_user`), as
    LangGraph's; a node's `runtime.server_info` is None when the config names none of them."""

    assistant_id: str
    graph_id: str
    user: Any = None
    """The authenticated user (an object with `identity`), if any."""

    @classmethod
    def of_config(cls, config: Mapping[str, Any]) -> ServerInfo | None:
        """The server info `config` carries, None if it carries none."""
        conf = config.get("configurable") or {}
        assistant_id, graph_id = conf.get("assistant_id"), conf.get("graph_id")
        user = conf.get("langgraph_auth_user")
        if user is not None and not hasattr(user, "identity"):
            user = None
        if assistant_id is None and graph_id is None and user is None:
            return None
        return cls(str(assistant_id or ""), str(graph_id or ""), user)


@dataclass(frozen=True, slots=True)
class Runtime(Generic[C]):
    """Run-scoped values a node can use: context, store, stream writer, thread id. Every field
    has a default, so `Runtime(context=...)` builds one, as LangGraph's does."""

    context: C = None  # type: ignore[assignment]
    store: Any = None
    stream_writer: StreamWriter = no_writer
    thread_id: str | None = None
    previous: Any = None
    heartbeat: Callable[[], None] = no_heartbeat
    """Record progress for the node's `idle_timeout` (a no-op when it has none)."""
    control: RunControl | None = None
    """The run's `RunControl` (None outside a run)."""
    execution_info: ExecutionInfo | None = None
    """The running task, checkpoint and attempt (None outside a node)."""
    server_info: ServerInfo | None = None
    """The assistant, graph and user of a server's run (None otherwise)."""

    @property
    def drain_requested(self) -> bool:
        return self.control.drain_requested if self.control is not None else False

    @property
    def drain_reason(self) -> str | None:
        return self.control.drain_reason if self.control is not None else None

    def override(self, **changes: Any) -> Runtime[C]:
        """A copy with `changes` (field=value) applied."""
        return replace(self, **changes)

    @classmethod
    def of_run(
        cls, run: Any, writer: StreamWriter, heartbeat: Callable[[], None], pad: Any = None
    ) -> Runtime[Any]:
        """The `Runtime` a node of `run` is given (`pad`: the node's task's scratchpad, which
        its `execution_info` describes)."""
        return Runtime(
            context=run.context,
            store=run.graph.store,
            stream_writer=writer,
            thread_id=run.thread_id,
            heartbeat=heartbeat,
            control=run.control,
            execution_info=None if pad is None else ExecutionInfo.of_task(pad),
            server_info=ServerInfo.of_config(run.config),
        )

    def patch_execution_info(self, **overrides: Any) -> Runtime[C]:
        """A copy whose `execution_info` has `overrides` applied (it must be set)."""
        if self.execution_info is None:
            raise RuntimeError("Cannot patch execution_info before it has been set")
        return replace(self, execution_info=self.execution_info.patch(**overrides))

    def merge(self, other: Runtime[C]) -> Runtime[C]:
        """`other` over this one: each of its fields that is set (not None, not the default
        writer) wins, as LangGraph's `Runtime.merge`."""
        return Runtime(
            context=other.context or self.context,
            store=other.store or self.store,
            stream_writer=(
                other.stream_writer if other.stream_writer is not no_writer else self.stream_writer
            ),
            thread_id=other.thread_id or self.thread_id,
            previous=self.previous if other.previous is None else other.previous,
            heartbeat=(other.heartbeat if other.heartbeat is not no_heartbeat else self.heartbeat),
            control=other.control or self.control,
            execution_info=other.execution_info or self.execution_info,
            server_info=other.server_info or self.server_info,
        )


def get_runtime(context_schema: type[C] | None = None) -> Runtime[C]:
    """The `Runtime` of the node that is running (also from helpers it calls); `context_schema`
    only types the result, as in LangGraph."""
    pad = current_scratchpad("get_runtime")
    runtime: Runtime[C] = pad.run.runtime_for(pad.writer, pad.heartbeat, pad)
    return runtime
