"""The inbox index on SQLite (`InboxStore`): the `inbox` table, replaced per thread by commits
and pending writes (`_writes`), read here by keyset pages (SQL in `_coordination`)."""

from __future__ import annotations

from hitl_async.checkpoint.base import InboxEntry
from hitl_async.checkpoint.capabilities import InboxQuery, InboxStore
from hitl_async_sqlite import _coordination as _coord
from hitl_async_sqlite._connection import SqliteConnection

__all__ = ["SqliteInbox"]


class SqliteInbox(SqliteConnection, InboxStore):
    """Reads of the inbox index (never of checkpoints)."""

    async def list_inbox(self, query: InboxQuery = InboxQuery()) -> list[InboxEntry]:  # noqa: B008
        """A keyset page of pending interrupts, from the `inbox` table only."""
        return await self._read(_coord.list_inbox, query)
