"""`CompiledStateGraph`: runs a built graph — streaming, invoking, and reading or editing a
thread's state — with async methods and a synchronous facade for plain scripts."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Sequence
from contextlib import aclosing
from functools import partial
from typing import Any

from hitl_async import _sync
from hitl_async._cache import cache_namespace
from hitl_async._events import Event, RunEvents, parse_stream_mode
from hitl_async._graph_queue import Coordination
from hitl_async._graph_state import StateAccess
from hitl_async._live import run_inline, stream_run
from hitl_async._offload import engine, offloadable, run_on
from hitl_async._run import Run
from hitl_async._subgraph import calling_task, run_subgraph
from hitl_async._superstep import with_finished
from hitl_async.checkpoint.capabilities import Capability, LeaseStore
from hitl_async.constants import INTERRUPT
from hitl_async.errors import EmptyInputError, ThreadBusyError
from hitl_async.graph._runnable_api import RunnableApi
from hitl_async.graph._validation import check_run_breakpoints
from hitl_async.runnables import open_graph_run
from hitl_async.runtime import RunControl
from hitl_async.stream_messages import MessagesEmitter, with_messages_stream
from hitl_async.types import All, Durability, StreamMode

__all__ = ["CompiledStateGraph"]


def _shaper(single: bool, subgraphs: bool) -> Callable[[list[Event]], list[Any]]:
    """Turns a batch of `(namespace, mode, chunk)` events into what `stream()` yields."""
    if subgraphs:
        if single:
            return lambda batch: [(ns, chunk) for ns, _, chunk in batch]
        return lambda batch: batch
    if single:
        return lambda batch: [chunk for _, _, chunk in batch]
    return lambda batch: [(mode, chunk) for _, mode, chunk in batch]


class CompiledStateGraph(RunnableApi, StateAccess, Coordination):
    """A validated graph, ready to run. Every public method has an async twin (`a`-prefixed)."""

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
        control: RunControl | None = None,
        **_: Any,
    ) -> AsyncGenerator[list[Any], None]:
        """The stream in batches, shaped as `stream()` yields it. `live`: events come as they
        happen (a step that can emit before it ends runs in a task of its own); else every step
        runs in the caller's task and its events come after it."""
        modes, single = parse_stream_mode(stream_mode)
        run = self._new_run(
            config, modes, durability, interrupt_before, interrupt_after, subgraphs, context
        )
        if control is not None:  # (`RunControl.request_drain()` stops it at a step boundary)
            run.control = control
        shape = _shaper(single, subgraphs)
        drive = stream_run if live else run_inline
        run.config, chain = open_graph_run(run.config, input, self.name)
        batches = drive(run, input, wait, shape)
        return batches if chain is None else _traced(batches, chain, run)

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
        if interrupt_before is not None or interrupt_after is not None:
            conf = (config or {}).get("configurable") if isinstance(config, dict) else None
            thread = conf.get("thread_id") if isinstance(conf, dict) else None
            check_run_breakpoints(self.builder, interrupt_before, interrupt_after, thread)
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
        conf = run.config.get("configurable") or {}
        if conf.get("checkpoint_ns"):  # a subgraph's checkpoint config, as LangGraph: the root
            # starts from the parent checkpoint its map names, the subgraph from its own
            run.address = dict(conf.get("checkpoint_map") or {})
            run.at = run.address.get("")
        run.ns = ""  # a root run's namespace, whatever `checkpoint_ns` says, as in LangGraph
        run.parents = {}
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
        control: RunControl | None = None,
        **_: Any,
    ) -> Any:
        """`ainvoke` without a stream in between: the same run, keeping only the last values."""
        run = self._new_run(
            config, (), durability, interrupt_before, interrupt_after, False, context
        )
        if control is not None:
            run.control = control
        run.config, chain = open_graph_run(run.config, input, self.name)
        try:
            await run.start(input, wait=wait)
            while await run.tick():
                pass
            await run.finish(release=True)
        except BaseException as exc:
            await run.abandon()
            if chain is not None:
                chain.on_chain_error(exc)
            raise
        out = _invoke_output(run)
        if chain is not None:  # (the state, without the pending interrupts, as LangGraph's)
            chain.on_chain_end(
                {k: v for k, v in out.items() if k != INTERRUPT} if isinstance(out, dict) else out
            )
        return out

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
        if offloadable(self, config) and (inbox := engine()) is not None:
            return await run_on(inbox, partial(self._invoke, input, config, **kwargs))
        return await self._invoke(input, config, **kwargs)

    def invoke(self, input: Any, config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Synchronous `ainvoke()`; inside a sync node it runs as a subgraph of that node."""
        pad = calling_task(config)
        if pad is not None:
            return _sync.from_body(partial(run_subgraph, from_invoke=True), self, input, pad)
        return _sync.run(lambda: self.ainvoke(input, config, **kwargs))

    # -- node cache ------------------------------------------------------------------------------

    async def aclear_cache(self, nodes: Sequence[str] | None = None) -> None:
        """Forget the cached results of `nodes` (default: every node with a `CachePolicy`)."""
        if self.cache is None:
            return
        names = list(nodes) if nodes is not None else list(self.builder.nodes)
        namespaces = [
            cache_namespace(spec.fn, name)
            for name in names
            if (spec := self.builder.nodes.get(name)) is not None and spec.cache_policy
        ]
        await self.cache.aclear(namespaces)

    def clear_cache(self, nodes: Sequence[str] | None = None) -> None:
        """Synchronous `aclear_cache()`."""
        _sync.run(lambda: self.aclear_cache(nodes))

    # -- recovery ----------------------------------------------------------------------------------

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


def _invoke_output(run: Run) -> Any:
    """What `invoke` returns at the end of `run`."""
    if run.interrupts:
        # As LangGraph: the state with the writes of the paused step's finished tasks (a
        # root-schema state, not a dict, is left out).
        out = run.output(with_finished(run))
        return {**(out if isinstance(out, dict) else {}), INTERRUPT: list(run.interrupts)}
    if any(t.done for t in run.tasks):  # paused (a subgraph's breakpoint) mid-step
        return run.output(with_finished(run))
    return run.output() if run.exists else None


async def _traced(
    batches: AsyncGenerator[list[Any], None], chain: Any, run: Run
) -> AsyncGenerator[list[Any], None]:
    """A stream's batches inside the graph's chain run (`open_graph_run`), ended with the run's
    output or the error that stopped it."""
    async with aclosing(batches):
        try:
            async for batch in batches:
                yield batch
        except BaseException as exc:
            chain.on_chain_error(exc)
            raise
    chain.on_chain_end(run.output() if run.exists else None)
