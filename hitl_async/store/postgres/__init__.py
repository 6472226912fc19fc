"""`PostgresStore` under LangGraph's name and constructors (`langgraph.store.postgres`).

    from hitl_async.store.postgres import PostgresStore

    with PostgresStore.from_conn_string("postgresql://user:pw@host:5432/db") as store:
        store.setup()
        graph = builder.compile(checkpointer=checkpointer, store=store)

It is the `hitl-async-postgres` driver's store (asyncpg, its own pool); given a psycopg
connection it connects to the same database with the same credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hitl_async.checkpoint.langgraph_names import SyncSetup, close_blocking, require_driver

require_driver("hitl_async_postgres", "hitl-async-postgres")

from hitl_async_postgres.store import PostgresStore as _DriverStore  # noqa: E402

from hitl_async.checkpoint.postgres import saver_arguments  # noqa: E402
from hitl_async.store._langgraph_names import no_deserializer, pool_options  # noqa: E402

__all__ = ["ConnStore", "PostgresStore"]


class ConnStore(_DriverStore):
    """The driver's store made from LangGraph's constructor arguments: `conn` (a URL or a
    psycopg connection); `pipe` is ignored (the driver batches by itself) and
    `deserializer` refused."""

    def __init__(
        self, conn: Any, *, pipe: Any = None, deserializer: Any = None, **options: Any
    ) -> None:
        no_deserializer(deserializer, type(self).__name__)
        dsn, merged = saver_arguments(conn, options)  # the same URL and options
        super().__init__(dsn, **merged)
        self.conn = conn


class PostgresStore(SyncSetup, ConnStore):
    """LangGraph's `PostgresStore(conn)`: items in the database of `conn`, with a blocking
    `setup()` from synchronous code."""

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        pipeline: bool = False,
        pool_config: dict[str, Any] | None = None,
        **options: Any,
    ) -> Iterator[PostgresStore]:
        """A store on `conn_string` (`index=`, `ttl=` as LangGraph's), closed on exit."""
        store = cls(conn_string, **pool_options(pool_config), **options)
        try:
            yield store
        finally:
            close_blocking(store)
