"""`CompiledStateGraph`: runs a built graph — streaming, invoking, and reading or editing a
thread's state — with async methods and a synchronous facade for plain scripts."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio

from hitl_async import _sync
from hitl_async._edits import cancel_thread, update_state
from hitl_async._events import Event, RunEvents, parse_stream_mode
from hitl_async._live import run_inline, stream_run
from hitl_async._plan import Plan
from hitl_async._run import Run
from hitl_async._snapshot import snapshot
from hitl_async._subgraph import calling_task, run_subgraph
from hitl_async.checkpoint.capabilities import (
    Capability,
    ChangeFeed,
    InboxStore,
    LeaseStore,
    RunQueueStore,
    require,
)
from hitl_async.constants import INTERRUPT
from hitl_async.errors import EmptyInputError, InvalidConfigError, ThreadBusyError
from hitl_async.graph.drawing import DrawableGraph
from hitl_async.inbox import PendingInterrupt, list_pending
from hitl_async.runs import RunHandle, new_request
from hitl_async.serde import default_serializer, register_types_from_annotation
from hitl_async.stream_messages import MessagesEmitter, with_messages_stream
from hitl_async.telemetry import instrument_store, with_trace_context
from hitl_async.types import All, Durability, StateSnapshot, StreamMode

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import BaseSaver
    from hitl_async.graph.state import StateGraph

__all__ = ["CompiledStateGraph"]

_DURABILITY = frozenset({"sync", "async", "exit"})


def _shaper(single: bool, subgraphs: bool) -> Callable[[list[Event]], list[Any]]:
    """Turns a batch of `(namespace, mode, chunk)` events into what `stream()` yields."""
    if subgraphs:
        if single:
            return lambda batch: [(ns, chunk) for ns, _, chunk in batch]
        return lambda batch: batch
    if single:
        return lambda batch: [chunk for _, _, chunk in batch]
    return lambda batch: [(mode, chunk) for _, mode, chunk in batch]


class CompiledStateGraph:
    """A validated graph, ready to run. Every public method has an async twin (`a`-prefixed)."""

    def __init__(
        self,
        builder: StateGraph,
        *,
        checkpointer: BaseSaver | None,
        interrupt_before: Sequence[str] | All | None,
        interrupt_after: Sequence[str] | All | None,
        name: str,
        store: Any | None = None,
        lease_ttl: float = 30.0,
        serializer: Any | None = None,
    ) -> None:
        self.builder = builder
        self.checkpointer = checkpointer
        self.interrupt_before_nodes = interrupt_before
        self.interrupt_after_nodes = interrupt_after
        self.name = name
        self.store = store
        self.plan = Plan(builder)
        self.lease_ttl = lease_ttl
        register_types_from_annotation(builder.state_schema)
        self.serde: Any = serializer if serializer is not None else default_serializer
        if serializer is not None:
            serializer.register_types_from_annotation(builder.state_schema)

    @property
    def nodes(self) -> dict[str, Any]:
        return dict(self.builder.nodes)

    def with_checkpointer(self, checkpointer: BaseSaver | None) -> CompiledStateGraph:
        """A new compiled graph of the same builder, interrupt_before/after, name, store and
        lease_ttl, whose threads live in `checkpointer` (this graph is left unchanged)."""
        new = type(self)(
            self.builder,
            checkpointer=checkpointer,
            interrupt_before=self.interrupt_before_nodes,
            interrupt_after=self.interrupt_after_nodes,
            name=self.name,
            store=self.store,
            lease_ttl=self.lease_ttl,
            serializer=self.serde,
        )
        for key, value in vars(self).items():  # what a subclass set after construction
            if key not in vars(new):
                setattr(new, key, value)
        return new

    def get_graph(self, *, xray: bool | int = True) -> DrawableGraph:
        """A picture of the graph (`.draw_mermaid()`), subgraphs drawn inside their node."""
        return DrawableGraph.of(self.builder, self.name)

    def _config(self, config: dict[str, Any] | None) -> dict[str, Any]:
        if config is None:
            return {"configurable": {}}
        if not isinstance(config, dict):
            raise InvalidConfigError(
                f"config must be a dict like {{'configurable': {{'thread_id': ...}}}}, got "
                f"{type(config).__name__}"
            )
        return config

    def _durability(self, durability: Durability | None) -> str:
        value = durability or "async"
        if value not in _DURABILITY:
            raise InvalidConfigError(
                f"durability must be one of {sorted(_DURABILITY)}, got {durability!r}"
            )
        return value

    def _context(self, context: Any) -> Any:
        """The run's context, built from a dict when `context_schema` is a class."""
        schema = self.builder.context_schema
        if context is None or schema is None or not isinstance(context, dict):
            return context
        if hasattr(schema, "model_validate"):
            return schema.model_validate(context)
        if isinstance(schema, type) and hasattr(schema, "__dataclass_fields__"):
            return schema(**context)
        return context

    def _require_saver(self, what: str) -> BaseSaver:
        if self.checkpointer is None:
            raise InvalidConfigError(
                f"{what} needs a checkpointer: compile the graph with one, e.g. "
                "builder.compile(checkpointer=InMemorySaver())"
            )
        return self.checkpointer

    # -- running ---------------------------------------------------------------------------------

    async def astream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamMode | Sequence[StreamMode] | None = None,
        interrupt_before: Sequence[str] | All | None = None,
        interrupt_after: Sequence[str] | All | None = None,
        durability: Durability | None = None,
        subgraphs: bool = False,
        context: Any | None = None,
        wait: float = 0.0,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Run the graph on a thread, yielding events as they happen; see the README for each
        stream mode. Leaving the loop early cancels the run (the thread stays resumable).

        The run holds the thread's lease while it runs (with a driver that supports it): a
        second run on a busy thread raises `ThreadBusyError`, or waits up to `wait` seconds.
        """
        batches = self._stream_batches(
            input,
            config,
            stream_mode=stream_mode,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            durability=durability,
            subgraphs=subgraphs,
            context=context,
            wait=wait,
            **kwargs,
        )
        async with aclosing(batches):
            async for batch in batches:
                for item in batch:
                    yield item

    def _stream_batches(
        self,
        input: Any,
        config: dict[str, Any] | None,
        *,
        stream_mode: StreamMode | Sequence[StreamMode] | None = None,
        interrupt_before: Sequence[str] | All | None = None,
        interrupt_after: Sequence[str] | All | None = None,
        durability: Durability | None = None,
        subgraphs: bool = False,
        context: Any | None = None,
        wait: float = 0.0,
        live: bool = True,
        **_: Any,
    ) -> AsyncGenerator[list[Any], None]:
        """The stream in batches, shaped as `stream()` yields it. `live`: events come as they
        happen (a step that can emit before it ends runs in a task of its own); else every step
        runs in the caller's task and its events come after it."""
        modes, single = parse_stream_mode(stream_mode)
        run = self._new_run(
            config, modes, durability, interrupt_before, interrupt_after, subgraphs, context
        )
        shape = _shaper(single, subgraphs)
        drive = stream_run if live else run_inline
        return drive(run, input, wait, shape)

    def _new_run(
        self,
        config: dict[str, Any] | None,
        modes: Sequence[str],
        durability: Durability | None,
        interrupt_before: Sequence[str] | All | None,
        interrupt_after: Sequence[str] | All | None,
        subgraphs: bool,
        context: Any,
    ) -> Run:
        run = Run(
            self,
            self._config(config),
            events=RunEvents(modes, subgraphs=subgraphs),
            durability=self._durability(durability),
            interrupt_before=(
                interrupt_before if interrupt_before is not None else self.interrupt_before_nodes
            ),
            interrupt_after=(
                interrupt_after if interrupt_after is not None else self.interrupt_after_nodes
            ),
        )
        run.context = self._context(context)
        if "messages" in modes:  # (message, metadata) events from the stream_messages handler
            events = run.events  # thread-safe: model callbacks may run in worker threads
            emitter = MessagesEmitter(
                lambda ns, item: events.put((ns, "messages", item)), subgraphs=subgraphs
            )
            run.config = with_messages_stream(run.config, emitter)
        return run

    async def _invoke(
        self,
        input: Any,
        config: dict[str, Any] | None,
        *,
        interrupt_before: Sequence[str] | All | None = None,
        interrupt_after: Sequence[str] | All | None = None,
        durability: Durability | None = None,
        context: Any | None = None,
        wait: float = 0.0,
        **_: Any,
    ) -> Any:
        """`ainvoke` without a stream in between: the same run, keeping only the last values."""
        run = self._new_run(
            config, (), durability, interrupt_before, interrupt_after, False, context
        )
        try:
            await run.start(input, wait=wait)
            while await run.tick():
                pass
            await run.finish(release=True)
        except BaseException:
            await run.abandon()
            raise
        # The state after the last finished step (a paused step changed nothing yet).
        latest = run.output() if run.exists else None
        if run.interrupts:
            return {**(latest or {}), INTERRUPT: list(run.interrupts)}
        return latest

    async def _collect(self, input: Any, config: dict[str, Any] | None, **kwargs: Any) -> list[Any]:
        """Everything `astream` would yield, run in the caller's task (no live delivery)."""
        out: list[Any] = []
        async for batch in self._stream_batches(input, config, live=False, **kwargs):
            out += batch
        return out

    def stream(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Synchronous `astream()`: usable from plain scripts with no event loop running."""
        yield from _sync.iterate_batches(self._stream_batches(input, config, **kwargs))

    async def ainvoke(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        stream_mode: StreamMode = "values",
        **kwargs: Any,
    ) -> Any:
        """Run to the end (or the next pause); return the final state.

        When the run paused on `interrupt()`, the result also has `"__interrupt__"`: the list of
        pending interrupts.
        """
        pad = calling_task(config)
        if pad is not None and stream_mode == "values":
            return await run_subgraph(self, input, pad)
        if stream_mode != "values":
            return await self._collect(input, config, stream_mode=stream_mode, **kwargs)
        return await self._invoke(input, config, **kwargs)

    def invoke(self, input: Any, config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Synchronous `ainvoke()`; inside a sync node it runs as a subgraph of that node."""
        pad = calling_task(config)
        if pad is not None:
            return anyio.from_thread.run(run_subgraph, self, input, pad)
        return _sync.run(lambda: self.ainvoke(input, config, **kwargs))

    # -- state -----------------------------------------------------------------------------------

    async def aget_state(self, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at its head, or at the checkpoint named in `config`."""
        self._require_saver("get_state()")
        run = Run(self, self._config(config))
        await run.load()
        state = snapshot(run, at_head=run.head in (None, run.cp.checkpoint_id))
        if subgraphs:
            state = await self._with_subgraph_states(run, state)
        return state

    async def _with_subgraph_states(self, run: Run, snapshot: StateSnapshot) -> StateSnapshot:
        """Attach each paused subgraph task's own snapshot as its `state`."""
        tasks = []
        for task in snapshot.tasks:
            spec = self.builder.nodes.get(task.name)
            if spec is None or spec.subgraph is None or task.result is not None:
                tasks.append(task)
                continue
            part = f"{task.name}:{task.id}"
            ns = f"{run.ns}|{part}" if run.ns else part
            conf = {**(run.config.get("configurable") or {}), "checkpoint_ns": ns}
            conf.pop("checkpoint_id", None)
            sub_state = await spec.subgraph._sub_state({**run.config, "configurable": conf}, run)
            tasks.append(task._replace(state=sub_state))
        return snapshot._replace(tasks=tuple(tasks))

    async def _sub_state(self, config: dict[str, Any], parent: Run) -> StateSnapshot | None:
        run = Run(self, config, saver=self.checkpointer or parent.saver)
        await run.load()
        if not run.exists:
            return None
        return await self._with_subgraph_states(run, snapshot(run))

    def get_state(self, config: dict[str, Any], *, subgraphs: bool = False) -> StateSnapshot:
        """Synchronous `aget_state()`."""
        return _sync.run(lambda: self.aget_state(config, subgraphs=subgraphs))

    async def aget_state_history(
        self,
        config: dict[str, Any],
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[StateSnapshot]:
        """The thread's checkpoints, newest first; `before` is a config naming a checkpoint."""
        saver = self._require_saver("get_state_history()")
        config = self._config(config)
        conf = config.get("configurable") or {}
        thread_id = conf.get("thread_id")
        if thread_id is None:
            raise InvalidConfigError(
                "get_state_history() needs config={'configurable': {'thread_id': ...}}"
            )
        ns = conf.get("checkpoint_ns", "")
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        current = await saver.load(thread_id, ns)
        head = current.record.checkpoint_id if current is not None else None
        for loaded in await saver.history(
            thread_id, ns, before=before_id, limit=limit, filter=filter
        ):
            run = Run(self, config)
            run.set_loaded(loaded)
            # A checkpoint with a successor shows every task of its step, like LangGraph; only
            # the head leaves out tasks of an unfinished step that already finished.
            yield snapshot(run, at_head=head is None or loaded.record.checkpoint_id == head)

    def get_state_history(
        self,
        config: dict[str, Any],
        *,
        filter: dict[str, Any] | None = None,
        before: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> Iterator[StateSnapshot]:
        """Synchronous `aget_state_history()`."""

        async def collect() -> list[StateSnapshot]:
            return [
                s
                async for s in self.aget_state_history(
                    config, filter=filter, before=before, limit=limit
                )
            ]

        return iter(_sync.run(collect))

    async def aupdate_state(
        self, config: dict[str, Any], values: Any, as_node: str | None = None
    ) -> dict[str, Any]:
        """Write `values` to the thread as if `as_node` had returned them (a new checkpoint with
        metadata source "update"); returns the new checkpoint's config."""
        self._require_saver("update_state()")
        run = Run(self, self._config(config), durability="sync")
        await run.claim()
        try:
            return await update_state(run, values, as_node)
        finally:
            await run.release()

    def update_state(
        self, config: dict[str, Any], values: Any, as_node: str | None = None
    ) -> dict[str, Any]:
        """Synchronous `aupdate_state()`."""
        return _sync.run(lambda: self.aupdate_state(config, values, as_node))

    # -- distributed: queue, inbox, waiting, cancelling, recovery --------------------------------

    def _capable(self, what: str, capability: Capability) -> BaseSaver:
        """The checkpointer, if it has the capability `what` needs, else
        `MissingCapabilityError` (before any I/O)."""
        saver = self._require_saver(what)
        require(saver, capability, needed_for=what)
        return saver

    async def asubmit(
        self, input: Any, config: dict[str, Any], *, queue: str | None = None
    ) -> RunHandle:
        """Queue a run (input, or a `Command`) for a `Worker` of this graph; returns its handle."""
        saver = self._capable("submit()", Capability.RUN_QUEUE)
        assert isinstance(saver, RunQueueStore)
        config = self._config(config)
        thread_id = (config.get("configurable") or {}).get("thread_id")
        if not thread_id:
            raise InvalidConfigError("submit() needs config={'configurable': {'thread_id': ...}}")
        config = with_trace_context(config)  # the worker's run continues the caller's trace
        request = new_request(
            self.serde, queue or self.name, thread_id, input, config, graph=self.name
        )
        await instrument_store(saver).enqueue(request)
        return RunHandle(request.id, thread_id, saver, self.serde)

    def submit(self, input: Any, config: dict[str, Any], *, queue: str | None = None) -> RunHandle:
        """Synchronous `asubmit()` (the handle's methods are async)."""
        return _sync.run(lambda: self.asubmit(input, config, queue=queue))

    def handle(self, request_id: str, thread_id: str) -> RunHandle:
        """The handle of a run submitted earlier (e.g. by another process)."""
        saver = self._capable("handle()", Capability.RUN_QUEUE)
        assert isinstance(saver, RunQueueStore)
        return RunHandle(request_id, thread_id, saver, self.serde)

    async def ainbox(
        self,
        *,
        thread_id: str | None = None,
        node: str | None = None,
        due_before: float | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int = 100,
        all_graphs: bool = False,
    ) -> list[PendingInterrupt]:
        """Interrupts of this graph's threads waiting for a human, oldest first, from the index."""
        saver = self._capable("inbox()", Capability.INBOX)
        assert isinstance(saver, InboxStore)
        return await list_pending(
            saver,
            thread_id=thread_id,
            node=node,
            graph=None if all_graphs else self.name,
            due_before=due_before,
            after=after,
            limit=limit,
            serde=self.serde,
        )

    def inbox(self, **filters: Any) -> list[PendingInterrupt]:
        """Synchronous `ainbox()`."""
        return _sync.run(lambda: self.ainbox(**filters))

    async def await_for(
        self,
        config: dict[str, Any],
        *,
        until: str = "paused",
        timeout: float | None = None,
    ) -> StateSnapshot:
        """Wait until the thread is paused (an interrupt is pending) or done (nothing left to
        run), woken by the store's notifications; `TimeoutError` after `timeout` seconds."""
        if until not in ("paused", "done"):
            raise InvalidConfigError(f"until must be 'paused' or 'done', got {until!r}")
        saver = self._capable("wait_for()", Capability.CHANGE_NOTIFICATION)
        assert isinstance(saver, ChangeFeed)
        config = self._config(config)
        thread_id = (config.get("configurable") or {}).get("thread_id")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            snapshot = await self.aget_state(config)
            exists = snapshot.metadata is not None
            if until == "paused" and snapshot.interrupts:
                return snapshot
            if until == "done" and exists and not snapshot.next:
                return snapshot
            left = 5.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"thread {thread_id!r} is not {until} after {timeout} s "
                    f"(next={snapshot.next}, interrupts={len(snapshot.interrupts)})"
                )
            await saver.wait_for_change(str(thread_id), min(left, 5.0))

    def wait_for(
        self, config: dict[str, Any], *, until: str = "paused", timeout: float | None = None
    ) -> StateSnapshot:
        """Synchronous `await_for()`."""
        return _sync.run(lambda: self.await_for(config, until=until, timeout=timeout))

    async def acancel(self, config: dict[str, Any]) -> dict[str, Any]:
        """Cancel a thread: drop its pending tasks and interrupts (a checkpoint with source
        "cancel"); returns its config. A running thread is waited for up to 30 s."""
        self._require_saver("cancel()")
        run = Run(self, self._config(config), durability="sync")
        await run.claim(wait=30.0)
        try:
            return await cancel_thread(run)
        finally:
            await run.release()

    def cancel(self, config: dict[str, Any]) -> dict[str, Any]:
        """Synchronous `acancel()`."""
        return _sync.run(lambda: self.acancel(config))

    async def arecover(self, *, limit: int = 100) -> list[str]:
        """Continue this graph's runs whose process died (lease expired mid-run); returns the
        thread ids continued. Finished tasks of the interrupted step do not run again."""
        saver = self._capable("recover()", Capability.LEASES)
        assert isinstance(saver, LeaseStore)
        recovered = []
        for lease in await saver.expired_leases(graph=self.name, limit=limit):
            try:
                await self.ainvoke(None, {"configurable": {"thread_id": lease.thread_id}})
                recovered.append(lease.thread_id)
            except ThreadBusyError:
                continue  # another process is recovering it
            except EmptyInputError:
                continue  # it died before its first checkpoint; the lease is released now
        return recovered

    def recover(self, *, limit: int = 100) -> list[str]:
        """Synchronous `arecover()`."""
        return _sync.run(lambda: self.arecover(limit=limit))
