"""Renewing the leases of running runs: one thread per process with an event loop of its own
calls each store's `renew_lease` every third of the lease's ttl.

The renewal must not depend on the run's own event loop: a node may block that loop for longer
than the ttl (a sync node run inline, an async node calling blocking code), and a renewal
scheduled there would wait behind it while the lease expires and another worker takes the
thread over. Stores are called from this thread's loop: the in-memory saver is thread-safe,
SQLite runs its own thread, PostgreSQL and Redis keep a pool per event loop.

A forked child starts without the thread (and without the parent's leases); it starts its own
on its first run.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Protocol

from hitl_async.errors import LeaseLostError

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import Lease
    from hitl_async.checkpoint.capabilities import LeaseStore

__all__ = ["Renewable", "keep", "release"]

_RETRY = 1.0
"""Seconds before retrying a renewal that failed (e.g. the store was briefly unreachable)."""
_IDLE = 3600.0

log = logging.getLogger("hitl_async.run")


class Renewable(Protocol):
    """A lease holder: the keeper renews `current` in `store()` and stores the renewed lease."""

    ttl: float
    current: Lease | None

    def store(self) -> LeaseStore: ...


class _Keeper:
    """The process's keeper: the leases to renew (a heap by due time) and its thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.due: list[tuple[float, int]] = []
        self.held: dict[int, Renewable] = {}
        self.keys = itertools.count()
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wakeup: asyncio.Event | None = None
        self.sleeps_until = 0.0
        self.renewing: set[asyncio.Task[None]] = set()

    def keep(self, holder: Renewable) -> int:
        due = time.monotonic() + holder.ttl / 3
        with self.lock:
            key = next(self.keys)
            self.held[key] = holder
            heapq.heappush(self.due, (due, key))
            if self.thread is None:
                self.sleeps_until = 0.0
                self.thread = threading.Thread(
                    target=self._main, name="hitl-lease-keeper", daemon=True
                )
                self.thread.start()
            elif due < self.sleeps_until and self.loop is not None and self.wakeup is not None:
                self.loop.call_soon_threadsafe(self.wakeup.set)
        return key

    def release(self, key: int) -> None:
        with self.lock:
            self.held.pop(key, None)
            if len(self.due) > 64 and len(self.due) > 4 * len(self.held):
                self.due = [(t, k) for t, k in self.due if k in self.held]  # drop the ended
                heapq.heapify(self.due)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        wakeup = asyncio.Event()
        with self.lock:
            self.loop, self.wakeup = asyncio.get_running_loop(), wakeup
        while True:
            wakeup.clear()
            now = time.monotonic()
            ready: list[tuple[int, Renewable]] = []
            with self.lock:
                while self.due and (self.due[0][1] not in self.held or self.due[0][0] <= now):
                    _, key = heapq.heappop(self.due)
                    holder = self.held.get(key)
                    if holder is not None:
                        ready.append((key, holder))
                self.sleeps_until = self.due[0][0] if self.due else now + _IDLE
                sleep = self.sleeps_until - now
            for key, holder in ready:
                task = asyncio.create_task(self._renew(key, holder))
                self.renewing.add(task)
                task.add_done_callback(self.renewing.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), max(0.0, sleep))

    async def _renew(self, key: int, holder: Renewable) -> None:
        lease = holder.current
        if lease is None:
            self.release(key)
            return
        saver = holder.store()
        delay = holder.ttl / 3
        try:
            renewed = await asyncio.wait_for(saver.renew_lease(lease, holder.ttl), delay)
        except LeaseLostError:
            self.release(key)  # taken over: the run's next write finds out
            return
        except Exception as exc:
            log.warning("thread %r: renewing its lease failed: %s", lease.thread_id, exc)
            delay = min(_RETRY, delay)
        else:
            with self.lock:
                if key in self.held:
                    holder.current = renewed
        with self.lock:
            if key not in self.held:
                return
            due = time.monotonic() + delay
            heapq.heappush(self.due, (due, key))
            earlier = due < self.sleeps_until
        if earlier and self.wakeup is not None:
            self.wakeup.set()


_keeper = _Keeper()
_inherited: list[_Keeper] = []
"""A forked child's copy of its parent's keeper, never finalized (its loop and tasks belong to
a thread that does not exist in the child)."""


def _fresh_in_child() -> None:
    global _keeper
    _inherited.append(_keeper)
    _keeper = _Keeper()


os.register_at_fork(after_in_child=_fresh_in_child)


def keep(holder: Renewable) -> int:
    """Renew `holder.current` every third of `holder.ttl` from now on, from the keeper thread;
    returns a key for `release`."""
    return _keeper.keep(holder)


def release(key: int) -> None:
    """Stop renewing (the run is handing its lease back); a renewal under way is discarded."""
    _keeper.release(key)
