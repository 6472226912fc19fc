"""`AsyncSqliteStore` under LangGraph's name (`langgraph.store.sqlite.aio`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hitl_async.store.sqlite import ConnStore

__all__ = ["AsyncSqliteStore"]


class AsyncSqliteStore(ConnStore):
    """LangGraph's `AsyncSqliteStore(conn)`: items in the database file `conn` (an
    `aiosqlite.Connection`, a `sqlite3.Connection` or a path) is connected to."""

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, conn_string: str, **options: Any
    ) -> AsyncIterator[AsyncSqliteStore]:
        """A store on the database file `conn_string`, closed on exit."""
        store = cls(conn_string, **options)
        try:
            yield store
        finally:
            await store.aclose()
