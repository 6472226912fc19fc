"""`AsyncPostgresSaver` under LangGraph's name (`langgraph.checkpoint.postgres.aio`).

async with AsyncPostgresSaver.from_conn_string(url) as checkpointer:
    await checkpointer.setup()
    graph = builder.compile(checkpointer=checkpointer)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import hitl_async_postgres

from hitl_async.checkpoint.langgraph_names import no_serde
from hitl_async.checkpoint.postgres import saver_arguments

__all__ = ["AsyncPostgresSaver"]


class AsyncPostgresSaver(hitl_async_postgres.PostgresSaver):
    """LangGraph's `AsyncPostgresSaver(conn)`: checkpoints in the database of `conn` (a URL or
    a psycopg connection); `pipe` is ignored and `serde` refused, as for `PostgresSaver`."""

    def __init__(self, conn: Any, pipe: Any = None, serde: Any = None, **options: Any) -> None:
        no_serde(serde, type(self).__name__)
        dsn, merged = saver_arguments(conn, options)
        super().__init__(dsn, **merged)
        self.conn = conn

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, conn_string: str, *, pipeline: bool = False, serde: Any = None, **options: Any
    ) -> AsyncIterator[Any]:
        """A saver on `conn_string`, closed (its pool too) on exit."""
        saver = cls(conn_string, serde=serde, **options)
        try:
            yield saver
        finally:
            await saver.aclose()
