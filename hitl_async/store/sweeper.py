"""Deleting expired store items without a cron job: `StoreSweeper`.

Every `hitl_async.Worker` sweeps the store of its graph (`compile(store=...)`) as one of its
periodic duties, and `hitl serve` runs one for the server's store; several processes sweeping
one store is harmless (a sweep deletes what expired, once). Other programs can run one too:

    sweeper = StoreSweeper(store)          # interval: the store's ttl config, else 5 minutes
    await sweeper.start()                  # asyncio: a background task ...
    await sweeper.stop()
    # or, in any anyio task group: tg.start_soon(sweeper.run); or call `await sweeper.tick()`
    # from a loop of your own (it sweeps when the interval has passed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import anyio

from hitl_async.store.errors import InvalidStoreRequestError

__all__ = ["StoreSweeper", "sweeper_for"]

_log = logging.getLogger("hitl_async.store")
DEFAULT_INTERVAL_MINUTES = 5.0


class StoreSweeper:
    """Calls `store.asweep_ttl()` every `interval_minutes` (default: the store's TTL config's
    `sweep_interval_minutes`, else 5); a failed sweep is logged and retried next time."""

    def __init__(self, store: Any, interval_minutes: float | None = None) -> None:
        configured = (getattr(store, "ttl_config", None) or {}).get("sweep_interval_minutes")
        minutes = interval_minutes or configured or DEFAULT_INTERVAL_MINUTES
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
            raise InvalidStoreRequestError(
                f"the sweep interval is a positive number of minutes, got {minutes!r}"
            )
        self.store = store
        self.interval = float(minutes) * 60.0
        self.swept = 0
        self._last = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._stop = anyio.Event()

    async def sweep(self) -> int:
        """Sweep now; the number of items deleted (0 after a logged failure)."""
        self._last = time.monotonic()
        try:
            count = int(await self.store.asweep_ttl())
        except Exception:
            _log.exception("store TTL sweep failed; retrying in %.0f s", self.interval)
            return 0
        self.swept += count
        if count:
            _log.info("store TTL sweep deleted %d expired items", count)
        return count

    async def tick(self) -> int:
        """Sweep if the interval has passed since the last sweep; else 0 at once."""
        if time.monotonic() - self._last < self.interval:
            return 0
        return await self.sweep()

    async def run(self) -> None:
        """Sweep every interval until `stop()` (or cancellation)."""
        while True:
            with anyio.move_on_after(self.interval):
                await self._stop.wait()
            if self._stop.is_set():
                return
            await self.sweep()

    async def start(self) -> asyncio.Task[None]:
        """Run `run()` as a task of the running asyncio loop (the one task if already running)."""
        if self._task is None or self._task.done():
            self._stop = anyio.Event()
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self.run(), name="hitl store sweeper")
        return self._task

    async def stop(self, timeout: float | None = None) -> bool:
        """Stop the task started by `start()`; True once it ended (or none was running)."""
        task = self._task
        if task is None or task.done():
            return True
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            return False
        self._task = None
        return True

    @property
    def running(self) -> bool:
        """Whether a task started by `start()` is running."""
        return self._task is not None and not self._task.done()


def sweeper_for(store: Any, interval_minutes: float | None = None) -> StoreSweeper | None:
    """A sweeper for a hitl-async store with TTL support; None for None or other stores
    (LangGraph's own stores run their sweepers themselves)."""
    if store is None or not getattr(store, "supports_ttl", False):
        return None
    if not callable(getattr(store, "asweep_ttl", None)):
        return None
    with contextlib.suppress(InvalidStoreRequestError):
        return StoreSweeper(store, interval_minutes)
    return None
