"""`ainvoke` of a graph whose bodies are all sync, under asyncio: the whole run goes to an engine
thread, which runs the engine in an event loop of its own (the sync API's `_sync.Driver`), so
each step's lone sync node runs right there instead of paying a thread round trip per node
(measured: about half of a `def` chain's time per step). The caller's loop waits for one
hand-off per run and stays free meanwhile, as it does while a worker thread runs a node.

Only when nothing of the run may be bound to the caller's loop: no async node or routing
function (they may use the caller's clients and locks), no LangChain callbacks in the config
(an async handler may feed the caller's queue), and a checkpointer, store and cache that
declare `any_loop` (they keep one pool per event loop, as the sync API needs already).
Cancelling the caller cancels the run in its thread, at the same points as an inline run (a
sync body that runs finishes first), and waits for it to stop. At most `LIMIT` engine threads
exist; beyond that, runs stay in the caller's loop. A forked child starts with none."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from hitl_async import _sync
from hitl_async._workers import NEW, next_job, take_idle
from hitl_async.checkpoint.lifecycle import serves_one_caller

if TYPE_CHECKING:
    from hitl_async.graph.compiled import CompiledStateGraph

__all__ = ["LIMIT", "THREAD_NAME", "engine", "offloadable", "run_on"]

T = TypeVar("T")

LIMIT = 8
"""Engine threads per process at most (each keeps a loop and, with a server driver, about one
connection of its own)."""

IDLE = 30.0
"""Seconds an idle engine thread waits for a run before it ends (its loop and pools close)."""

THREAD_NAME = "hitl-async engine"


def offloadable(graph: CompiledStateGraph, config: Any) -> bool:
    """Whether an `ainvoke` of `graph` may run on an engine thread (see the module doc): every
    node and routing function a plain callable, no node a subgraph, nothing loop-bound."""
    loop = asyncio._get_running_loop()
    if loop is None or serves_one_caller(loop):  # trio; or the sync API's loop (or ours)
        return False
    for given in (config, getattr(graph, "config", None)):
        # LangChain callbacks (an async handler may feed a queue of the caller's loop)
        if isinstance(given, dict) and given.get("callbacks") is not None:
            return False
    for part in (graph.checkpointer, graph.store, graph.cache):
        if part is not None and not getattr(part, "any_loop", False):
            return False
    builder = graph.builder
    if any(n.is_async or n.subgraph is not None for n in builder.nodes.values()):
        return False
    return not any(b.is_async for bs in builder.branches.values() for b in bs)


class _Job:
    __slots__ = ("cancelled", "context", "fn", "fut", "loop", "settled", "task", "task_loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context,
        fn: Callable[[], Awaitable[Any]],
    ) -> None:
        self.loop = loop
        self.fut: asyncio.Future[Any] = loop.create_future()
        self.context: contextvars.Context | None = context
        self.fn: Callable[[], Awaitable[Any]] | None = fn
        self.task: asyncio.Task[Any] | None = None
        self.task_loop: asyncio.AbstractEventLoop | None = None
        self.cancelled = False
        self.settled = False

    async def body(self) -> Any:
        """The run, as a task of the engine thread's loop (so that it can be cancelled)."""
        self.task = asyncio.current_task()
        self.task_loop = asyncio.get_running_loop()
        if self.cancelled:
            raise asyncio.CancelledError
        assert self.fn is not None
        return await self.fn()

    def cancel(self) -> None:
        """From the caller's loop: cancel the run in its thread (or before it starts)."""
        self.cancelled = True
        task, loop = self.task, self.task_loop
        if task is not None and loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop closed: the run is over
                loop.call_soon_threadsafe(task.cancel)


def _settle(job: _Job, ok: bool, value: Any) -> None:
    job.settled = True
    if not job.fut.done():
        if ok:
            job.fut.set_result(value)
        else:
            job.fut.set_exception(value)


class _Engines:
    """The process's engine threads: idle ones wait on their own queue for the next run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[queue.SimpleQueue[_Job]] = []
        self.count = 0

    def take(self) -> queue.SimpleQueue[_Job] | None:
        taken = take_idle(self, LIMIT)
        if taken is not NEW:
            return taken  # type: ignore[no-any-return]
        inbox: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        threading.Thread(target=self._main, args=(inbox,), name=THREAD_NAME, daemon=True).start()
        return inbox

    def _main(self, inbox: queue.SimpleQueue[_Job]) -> None:
        while (job := next_job(inbox, self, inbox, IDLE)) is not None:
            try:
                assert job.context is not None
                value, ok = job.context.run(_sync.run, job.body), True
            except BaseException as exc:
                value, ok = exc, False
            job.context = job.fn = None
            with self.lock:
                self.idle.append(inbox)
            with contextlib.suppress(RuntimeError):  # the caller's loop closed: nobody waits
                job.loop.call_soon_threadsafe(_settle, job, ok, value)
            del job, value


_engines = _Engines()


def _forget_in_child() -> None:
    global _engines
    _engines = _Engines()


os.register_at_fork(after_in_child=_forget_in_child)


def engine() -> queue.SimpleQueue[_Job] | None:
    """An idle engine thread (one is started when none is idle) taken for one run; None when
    `LIMIT` threads are busy."""
    return _engines.take()


async def run_on(inbox: queue.SimpleQueue[_Job], fn: Callable[[], Awaitable[T]]) -> T:
    """Run `fn()` on the engine thread taken as `inbox`, in a copy of the current context;
    return what it returned (or raise what it raised)."""
    loop = asyncio.get_running_loop()
    job = _Job(loop, contextvars.copy_context(), fn)
    inbox.put(job)
    try:
        result: T = await job.fut
        return result
    except asyncio.CancelledError:
        job.cancel()
        with anyio.CancelScope(shield=True):
            while not job.settled:  # wait until the run stopped (stored what it could)
                job.fut = loop.create_future()
                with contextlib.suppress(BaseException):  # the caller's cancellation wins
                    await job.fut
        raise
