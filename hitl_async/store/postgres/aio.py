"""`AsyncPostgresStore` under LangGraph's name (`langgraph.store.postgres.aio`).

async with AsyncPostgresStore.from_conn_string(url) as store:
    await store.setup()
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from hitl_async.store._langgraph_names import pool_options
from hitl_async.store.postgres import ConnStore

__all__ = ["AsyncPostgresStore"]


class AsyncPostgresStore(ConnStore):
    """LangGraph's `AsyncPostgresStore(conn)`: items in the database of `conn`."""

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        pipeline: bool = False,
        pool_config: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncIterator[AsyncPostgresStore]:
        """A store on `conn_string` (`index=`, `ttl=` as LangGraph's), closed on exit."""
        store = cls(conn_string, **pool_options(pool_config), **options)
        try:
            yield store
        finally:
            await store.aclose()
