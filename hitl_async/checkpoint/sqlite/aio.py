"""`AsyncSqliteSaver` under LangGraph's name (`langgraph.checkpoint.sqlite.aio`).

async with AsyncSqliteSaver.from_conn_string("checkpoints.sqlite") as checkpointer:
    graph = builder.compile(checkpointer=checkpointer)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import hitl_async_sqlite

from hitl_async.checkpoint.langgraph_names import no_serde
from hitl_async.checkpoint.sqlite import database_path

__all__ = ["AsyncSqliteSaver"]


class AsyncSqliteSaver(hitl_async_sqlite.SqliteSaver):
    """LangGraph's `AsyncSqliteSaver(conn)`: checkpoints in the database `conn` (an
    `aiosqlite.Connection`, a `sqlite3.Connection` or a path) is connected to."""

    def __init__(self, conn: Any, *, serde: Any = None, **options: Any) -> None:
        no_serde(serde, type(self).__name__)
        super().__init__(database_path(conn), **options)
        self.conn = conn

    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, conn_string: str, **options: Any) -> AsyncIterator[Any]:
        """A saver on the database file `conn_string`, set up, and closed on exit."""
        saver = cls(conn_string, **options)
        try:
            await saver.setup()
            yield saver
        finally:
            await saver.aclose()
