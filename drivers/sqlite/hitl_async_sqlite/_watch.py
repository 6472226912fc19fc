"""Wake-ups for `wait_for_change` / `wait_for_work`, in any event loop.

SQLite cannot notify another process, so waiters poll `PRAGMA data_version` (it changes when
another connection, in any process, commits) with backoff. That pragma never changes for the
saver's own commits, so those wake waiters directly: once a write job's transaction committed,
the worker thread calls `Watchers.notify` with the keys it touched (`("thread", id)`,
`("queue", name)`), which schedules `Event.set` in each matching waiter's own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator

import anyio

__all__ = [
    "POLL_MAX",
    "POLL_MIN",
    "Watch",
    "Watchers",
    "current_schedule",
    "queue_key",
    "thread_key",
]

Key = tuple[str, str]
POLL_MIN = 0.005
"""First pause of `wait_for_change` / `wait_for_work` between two looks at the store (s)."""
POLL_MAX = 0.1
"""Longest pause between two looks (the backoff doubles up to it)."""
Schedule = Callable[..., object]


def thread_key(thread_id: str) -> Key:
    return ("thread", thread_id)


def queue_key(queue: str) -> Key:
    return ("queue", queue)


def current_schedule() -> Schedule:
    """A thread-safe `schedule(callback, *args)` into the running loop (asyncio or trio)."""
    try:
        return asyncio.get_running_loop().call_soon_threadsafe
    except RuntimeError:
        pass
    try:
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    except (ImportError, RuntimeError):
        raise RuntimeError("the SQLite saver must be used in an asyncio or trio loop") from None


class Watch:
    """One waiter: `fired` once a matching own write committed since the last `arm()`."""

    __slots__ = ("_event", "_lock", "_schedule", "fired")

    def __init__(self) -> None:
        self._schedule = current_schedule()
        self._lock = threading.Lock()
        self._event = anyio.Event()
        self.fired = False

    def arm(self) -> None:
        """Forget earlier notifications (call before re-checking the store)."""
        with self._lock:
            if self.fired:
                self.fired = False
                self._event = anyio.Event()

    def fire(self) -> None:
        """From any thread: mark fired and wake the waiter in its loop."""
        with self._lock:
            self.fired = True
            event = self._event
        with contextlib.suppress(Exception):  # the waiter's loop is gone: nobody waits
            self._schedule(event.set)

    async def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early when fired."""
        with self._lock:
            event = self._event
        with anyio.move_on_after(seconds):
            await event.wait()


class Watchers:
    """The waiters of one saver, by key; `notify` is called from the thread that committed
    (the worker, or a sync caller running a job itself)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[Key, set[Watch]] = {}

    @contextlib.contextmanager
    def watch(self, key: Key) -> Iterator[Watch]:
        """Register a waiter for `key` for the duration of the block."""
        waiter = Watch()
        with self._lock:
            self._by_key.setdefault(key, set()).add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                waiters = self._by_key.get(key)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._by_key[key]

    def notify(self, keys: Iterable[Key]) -> None:
        """Wake every waiter of any of `keys`."""
        with self._lock:
            waiters = {w for k in keys for w in self._by_key.get(k, ())}
        for waiter in waiters:
            waiter.fire()
