"""`PostgresChangeFeed`: `wait_for_change` (`ChangeFeed`) on the LISTEN connection of the running
event loop; commits, writes, releases and deletes NOTIFY the schema's change channel."""

from __future__ import annotations

import anyio

from hitl_async.checkpoint.capabilities import ChangeFeed
from hitl_async_postgres._connections import PostgresConnections

__all__ = ["PostgresChangeFeed"]


class PostgresChangeFeed(PostgresConnections, ChangeFeed):
    """Waiting for a thread to change."""

    async def wait_for_change(self, thread_id: str, timeout: float) -> None:
        listener = await self._listener()
        with listener.waiting(self.channels.change, thread_id) as event:
            with anyio.move_on_after(timeout):
                await event.wait()
