"""Change notification on SQLite (`ChangeFeed`): `wait_for_change` polls `PRAGMA data_version`
(another connection's commits) with backoff and is woken at once by this saver's own writes of
the thread (`_watch`)."""

from __future__ import annotations

import time

from hitl_async.checkpoint.capabilities import ChangeFeed
from hitl_async_sqlite import _coordination as _coord
from hitl_async_sqlite._connection import SqliteConnection
from hitl_async_sqlite._watch import POLL_MAX, POLL_MIN, thread_key

__all__ = ["SqliteChangeFeed"]


class SqliteChangeFeed(SqliteConnection, ChangeFeed):
    """`wait_for_change` by polling, plus this saver's own wake-ups."""

    async def wait_for_change(self, thread_id: str, timeout: float) -> None:
        """Return once the thread may have changed, or after `timeout` seconds.

        Woken at once by this saver's own commits, writes, releases and request updates of the
        thread; by any commit of another connection (any thread) within one poll interval.
        """
        if timeout <= 0:
            return
        deadline = time.monotonic() + timeout
        with self._watchers.watch(thread_key(thread_id)) as waiter:
            seen = await self._run(_coord.data_version)
            delay = POLL_MIN
            while not waiter.fired:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                await waiter.sleep(min(delay, left))
                delay = min(delay * 2, POLL_MAX)
                if waiter.fired or await self._run(_coord.data_version) != seen:
                    return
