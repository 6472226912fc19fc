"""Change notification on Redis (`ChangeFeed`): writes, releases and deletes publish the
thread id on the pub/sub channel `P:changes`; waiters listen through the loop's `Notifier`."""

from __future__ import annotations

from hitl_async.checkpoint.capabilities import ChangeFeed
from hitl_async_redis._codec import text
from hitl_async_redis._connection import RedisConnection

__all__ = ["RedisChangeFeed"]


class RedisChangeFeed(RedisConnection, ChangeFeed):
    """`wait_for_change` on the `P:changes` channel."""

    async def wait_for_change(self, thread_id: str, timeout: float) -> None:
        """Until a commit, writes, a lease release or a delete of the thread is published on
        `P:changes`, or `timeout` seconds."""
        if timeout <= 0:
            return
        notifier = await self._notifier()
        await notifier.wait_for_change(text(thread_id), timeout)
