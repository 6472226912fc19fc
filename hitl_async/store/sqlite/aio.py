"""`AsyncSqliteStore` under LangGraph's name (`langgraph.store.sqlite.aio`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hitl_async_sqlite.store import SqliteStore as _DriverStore

from hitl_async.checkpoint.sqlite import database_path
from hitl_async.store._langgraph_names import no_deserializer

__all__ = ["AsyncSqliteStore"]


class AsyncSqliteStore(_DriverStore):
    """LangGraph's `AsyncSqliteStore(conn)`: items in the database file `conn` (an
    `aiosqlite.Connection`, a `sqlite3.Connection` or a path) is connected to."""

    def __init__(self, conn: Any, *, deserializer: Any = None, **options: Any) -> None:
        no_deserializer(deserializer, type(self).__name__)
        super().__init__(database_path(conn), **options)
        self.conn = conn

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
