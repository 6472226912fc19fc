"""`PostgresInbox`: the inbox index of `PostgresSaver` (`InboxStore`), table `inbox`, whose rows
the fenced writes replace per thread."""

from __future__ import annotations

from typing import Any

from hitl_async.checkpoint.base import InboxEntry
from hitl_async.checkpoint.capabilities import InboxQuery, InboxStore
from hitl_async_postgres._connections import PostgresConnections
from hitl_async_postgres._rows import inbox_entry

__all__ = ["PostgresInbox"]


class PostgresInbox(PostgresConnections, InboxStore):
    """Listing the pending interrupts of every thread."""

    async def list_inbox(self, query: InboxQuery = InboxQuery()) -> list[InboxEntry]:  # noqa: B008
        """One index-ordered read of the `inbox` table (keyset pagination on `after`)."""
        thread_id, node, graph = query.thread_id, query.node, query.graph
        due_before, after = query.due_before, query.after
        args: list[Any] = [max(query.limit, 0)]
        args += [v for v in (thread_id, node, graph) if v is not None]
        if due_before is not None:
            args.append(due_before)
        if after is not None:
            args += list(after)
        sql = self._q.list_inbox(
            thread=thread_id is not None,
            node=node is not None,
            graph=graph is not None,
            due=due_before is not None,
            after=after is not None,
        )
        pool = await self._pool()
        return [inbox_entry(row) for row in await pool.fetch(sql, *args)]
