"""The sync facade's event loops. A plain thread (no loop running in it) runs the engine in an
event loop of its own, kept between calls so that the drivers' pools opened in it stay usable:
while it runs, the loop is stopped for the length of a lone sync node, which then runs in the
calling thread itself (`Driver.call`) instead of paying a round trip to a worker thread. A body
run that way that needs the loop again (a subgraph's `invoke`) runs it, nested (`from_body`).
A thread's loop is closed (its pending tasks cancelled, so pools close) once the thread's
`Thread` object is collected, or at exit.

Threads that cannot have a loop of their own use one shared background portal, as before: a
thread whose own loop is running (sync code called from async code), and an anyio worker thread
(a sync node run in a thread calling the sync API).

A forked child (gunicorn, Celery, multiprocessing) does not inherit threads or a usable loop: it
starts afresh on its first synchronous call; the parent's are never finalized in the child."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import anyio.from_thread
from anyio._core._eventloop import threadlocals as _anyio_threadlocals
from anyio.from_thread import BlockingPortal, start_blocking_portal

from hitl_async.checkpoint.lifecycle import mark_caller_loop

__all__ = [
    "Driver",
    "from_body",
    "in_event_loop",
    "inline_driver",
    "iterate",
    "iterate_batches",
    "run",
]

T = TypeVar("T")

_lock = threading.Lock()
_portal: BlockingPortal | None = None
_portal_cm: AbstractContextManager[BlockingPortal] | None = None
_owner_pid = 0
"""The process that started the portal (`atexit` in a forked child must not stop it)."""

_local = threading.local()
"""`driver`: the calling thread's `Driver`, made on its first synchronous call."""

_inherited: list[object] = []
"""A forked child's copies of its parent's portal and drivers, kept so that they are never
finalized: closing them would wait for threads (or use a loop) that do not exist in the child."""


class Driver:
    """One thread's event loop for the sync API. `run` drives a coroutine to its end in the
    calling thread; while it runs, a lone sync body asks (`call`) to run in this thread: the
    loop stops at the end of its current iteration, the body runs with no loop running (so it
    may drive the loop again, nested, through `run`), and the loop goes on with its result."""

    __slots__ = ("_requests", "depth", "loop", "pid", "serving", "thread")

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_task_factory(_kept_tasks())
        mark_caller_loop(self.loop)
        self.pid = os.getpid()
        self.thread = threading.get_ident()
        self.depth = 0
        """How many `run` calls are under way in this thread (nested ones included)."""
        self.serving = 0
        """How many bodies are running in this thread, called from the loop (nested included)."""
        self._requests: deque[tuple[asyncio.Future[Any], contextvars.Context, Callable[[], Any]]]
        self._requests = deque()

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `fn(*args)` in this thread's loop, in a copy of the caller's context."""
        task = self.loop.create_task(self._main(fn(*args)), context=contextvars.copy_context())
        self.depth += 1
        try:
            self._drive(task)
        except BaseException:
            if not task.done():  # e.g. KeyboardInterrupt: cancel the run and let it clean up
                task.cancel()
                self._drive(task)
            raise
        finally:
            self.depth -= 1
        return task.result()

    def _drive(self, task: asyncio.Future[Any]) -> None:
        loop = self.loop
        if not _steppable(loop):
            while not task.done():
                loop.run_forever()
                self._serve()
            return
        # `run_forever`, with its set-up done once per run rather than once per body served:
        # between bodies only the marks of a running loop are taken down (so that a body may
        # drive the loop again, nested) and put back.
        steppable: Any = loop
        steppable._check_closed()
        steppable._check_running()
        old_hooks = sys.get_asyncgen_hooks()
        try:
            sys.set_asyncgen_hooks(
                firstiter=steppable._asyncgen_firstiter_hook,
                finalizer=steppable._asyncgen_finalizer_hook,
            )
            while not task.done():
                steppable._thread_id = threading.get_ident()
                asyncio.events._set_running_loop(loop)
                try:
                    while True:
                        steppable._run_once()
                        if steppable._stopping:
                            break
                finally:
                    steppable._stopping = False
                    steppable._thread_id = None
                    asyncio.events._set_running_loop(None)
                self._serve()
        finally:
            sys.set_asyncgen_hooks(*old_hooks)

    async def _main(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        finally:
            self.loop.stop()  # ends this loop iteration's run_forever: no extra iteration

    def _serve(self) -> None:
        """Run the bodies that asked for this thread while the loop ran."""
        requests = self._requests
        while requests:
            fut, context, call = requests.popleft()
            if fut.done():  # its task was cancelled before the body started
                continue
            self.serving += 1
            try:
                value = context.run(call)
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
            except BaseException:
                fut.cancel()
                raise
            else:
                if not fut.done():
                    fut.set_result(value)
            finally:
                self.serving -= 1

    async def call(self, call: Callable[[], T]) -> T:
        """From a task of this loop: run the sync `call` in this thread, the loop paused."""
        fut: asyncio.Future[T] = self.loop.create_future()
        self._requests.append((fut, contextvars.copy_context(), call))
        self.loop.stop()
        return await fut


def _steppable(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether `_drive` may step `loop` itself: asyncio's own selector loop (not uvloop, not a
    subclass that changes `run_forever`), of a Python whose loop internals it knows, not in
    debug mode (which tracks coroutine origins per `run_forever`)."""
    return (
        sys.version_info < (3, 14)
        and type(loop).run_forever is asyncio.BaseEventLoop.run_forever
        and all(hasattr(loop, a) for a in _STEPPING)
        and not loop.get_debug()
    )


_STEPPING = ("_run_once", "_stopping", "_thread_id", "_check_running", "_check_closed")


def _kept_tasks() -> Callable[..., asyncio.Task[Any]]:
    """A task factory that holds every pending task of the loop strongly. A loop that is not
    running keeps no reference to a task waiting on a future (e.g. a driver's pool keeper): had
    the driver forgotten it, it would be collected pending ("Task was destroyed but it is
    pending"); kept, it is cancelled properly when the loop is closed."""
    pending: set[asyncio.Task[Any]] = set()

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        pending.add(task)
        task.add_done_callback(pending.discard)
        return task

    return factory


def _close_loop(loop: asyncio.AbstractEventLoop, pid: int) -> None:
    """When a thread that had a `Driver` is gone (its `Thread` object collected) or at exit:
    let what is pending in its loop run, cancel what is left (pools' keepers close their
    connections), finish async generators, close the loop. From a thread whose own loop is
    running, a helper thread does it (a loop cannot run inside another)."""
    if pid != os.getpid() or loop.is_closed() or loop.is_running():
        return
    if asyncio._get_running_loop() is not None:
        with contextlib.suppress(RuntimeError):  # at interpreter exit: nothing to do
            threading.Thread(target=_close_loop, args=(loop, pid), daemon=True).start()
        return
    with contextlib.suppress(Exception):
        loop.run_until_complete(asyncio.sleep(0))  # callbacks handed in from other threads
        tasks = asyncio.all_tasks(loop)
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    with contextlib.suppress(Exception):
        loop.close()


def _driver() -> Driver:
    driver: Driver | None = getattr(_local, "driver", None)
    if driver is None or driver.pid != os.getpid():
        if driver is not None:
            _inherited.append(driver)
        driver = _local.driver = Driver()
        # The loop outlives no thread: closed once the thread's `Thread` object is collected
        # (or at interpreter exit for those that live that long, the main thread's included).
        weakref.finalize(threading.current_thread(), _close_loop, driver.loop, driver.pid)
    return driver


def inline_driver() -> Driver | None:
    """The calling thread's `Driver` when it is the one running the current event loop (the
    sync API called from this thread): a lone sync body can then run in this thread."""
    driver: Driver | None = getattr(_local, "driver", None)
    if driver is not None and driver.depth and asyncio._get_running_loop() is driver.loop:
        return driver
    return None


def _serving() -> Driver | None:
    driver: Driver | None = getattr(_local, "driver", None)
    if driver is not None and driver.serving and not driver.loop.is_running():
        return driver
    return None


def in_event_loop() -> bool:
    """Whether an event loop (asyncio or trio) runs in this thread now; not a loop paused
    while a sync body runs in its thread, which reaches it through `from_body`. (The thread's
    own state, not sniffio's context variable, which a worker thread's copied context may
    carry.)"""
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def from_body(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """From a sync body of a running graph (a node, an entrypoint, a task): run `fn(*args)` in
    the run's event loop and wait for it (the body runs in a worker thread of that loop, or in
    the loop's own thread while the loop is paused for it)."""
    driver = _serving()
    if driver is not None:
        return driver.run(fn, *args)
    return anyio.from_thread.run(_as_coroutine(fn), *args)


def _as_coroutine(fn: Callable[..., Awaitable[T]]) -> Callable[..., Coroutine[Any, Any, T]]:
    async def call(*args: Any) -> T:
        return await fn(*args)

    return call


# -- the shared portal (threads that cannot run a loop of their own) ------------------------------


def _stop() -> None:
    global _portal, _portal_cm
    if _portal_cm is not None and _owner_pid == os.getpid():
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            _portal_cm.__exit__(None, None, None)
    _portal = _portal_cm = None


def _forget_in_child() -> None:
    """After `fork()`: the portal's thread and the drivers' loops did not come along."""
    global _lock, _portal, _portal_cm, _local
    _inherited.append((_portal, _portal_cm, _local, dict(_open_streams)))
    _open_streams.clear()
    _lock = threading.Lock()
    _portal = _portal_cm = None
    _local = threading.local()


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(_stop)


def _get() -> BlockingPortal:
    global _portal, _portal_cm, _owner_pid
    with _lock:
        if _portal is None:
            _portal_cm = start_blocking_portal(backend="asyncio")
            _portal = _portal_cm.__enter__()
            _owner_pid = os.getpid()
        return _portal


def _own_loop_possible() -> bool:
    """Whether this thread may run the engine in a loop of its own: no loop running in it, and
    not an anyio worker thread (whose sync calls keep sharing the portal, not one loop each)."""
    if in_event_loop():
        return False
    return not any(
        hasattr(_anyio_threadlocals, a) for a in ("current_token", "current_async_backend")
    )


class _Caller:
    """How one synchronous call reaches an event loop: this thread's `Driver`, or the portal."""

    __slots__ = ("driver", "portal")

    def __init__(self) -> None:
        driver: Driver | None = getattr(_local, "driver", None)
        # The thread has its loop (a sync body run in it may call the sync API again): unless
        # a loop now runs in it, keep using it.
        if (
            driver is not None
            and driver.pid == os.getpid()
            and not driver.loop.is_running()
            and (driver.serving or asyncio._get_running_loop() is None)
        ):
            self.driver: Driver | None = driver
            self.portal: BlockingPortal | None = None
            return
        self.driver = _driver() if _own_loop_possible() else None
        self.portal = _get() if self.driver is None else None

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self.driver is not None:
            return self.driver.run(fn, *args)
        assert self.portal is not None
        return self.portal.call(fn, *args)

    def close_later(self, agen: AsyncIterator[Any]) -> None:
        """Close `agen` (its run is cancelled: what finished is stored, the lease released) when
        its sync iterator is closed or dropped: at once from its own thread, else on its loop.
        Once that loop (or the portal) is closed, at interpreter exit, there is nothing left to
        do: closing the loop closed its async generators (`shutdown_asyncgens`) already."""
        aclose = getattr(agen, "aclose", None)
        if aclose is None:
            return
        driver = self.driver
        if driver is None:
            with contextlib.suppress(RuntimeError):  # "This portal is not running": at exit
                self.call(aclose)
            return
        loop = driver.loop
        if loop.is_closed() or driver.pid != os.getpid():
            return
        if driver.thread != threading.get_ident():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: loop.create_task(aclose()))
        elif loop.is_running():  # collected by the GC while this thread's loop runs a callback
            loop.create_task(aclose())
        else:
            self.call(aclose)


_open_streams: dict[int, tuple[_Caller, AsyncIterator[Any], int]] = {}
"""This process's sync iterators not finished yet, by id of their async one: (caller, it,
thread). A forked child starts with none (`_forget_in_child`)."""
_exit_hook: list[bool] = []


def _track(caller: _Caller, agen: AsyncIterator[Any]) -> None:
    _open_streams[id(agen)] = (caller, agen, threading.get_ident())
    if not _exit_hook:
        _exit_hook.append(True)
        with contextlib.suppress(RuntimeError, AttributeError):  # (already shutting down)
            threading._register_atexit(_close_main_thread_streams)  # type: ignore[attr-defined]


def _close_main_thread_streams() -> None:
    """When the main thread's code is done (before `atexit`, so before the drivers close their
    connections): close the streams it left open, so their runs are cancelled the documented
    way, what finished stored and the lease released, instead of failing later on a closed
    store or loop."""
    main = threading.main_thread().ident
    for key, (caller, agen, thread) in list(_open_streams.items()):
        if thread == main and _open_streams.pop(key, None) is not None:
            with contextlib.suppress(Exception):
                caller.close_later(agen)


def run(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run a coroutine function to completion from synchronous code."""
    return _Caller().call(fn, *args)


def iterate_batches(agen: AsyncIterator[list[T]]) -> Iterator[T]:
    """Iterate an async iterator of batches from synchronous code, one loop run per batch;
    closing the returned iterator early (or dropping it) closes the async one too."""
    caller = _Caller()

    async def step() -> list[T] | None:
        try:
            return await agen.__anext__()
        except StopAsyncIteration:
            return None

    finished = False
    _track(caller, agen)
    try:
        while (batch := caller.call(step)) is not None:
            yield from batch
        finished = True
    finally:
        if _open_streams.pop(id(agen), None) is not None and not finished:
            caller.close_later(agen)


def iterate(agen: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from synchronous code, one item per loop run."""
    caller = _Caller()

    async def step() -> tuple[bool, Any]:
        try:
            return True, await agen.__anext__()
        except StopAsyncIteration:
            return False, None

    finished = False
    _track(caller, agen)
    try:
        while True:
            more, item = caller.call(step)
            if not more:
                finished = True
                return
            yield item
    finally:
        if _open_streams.pop(id(agen), None) is not None and not finished:
            caller.close_later(agen)
