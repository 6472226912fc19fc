"""`SqliteStore` under LangGraph's name and constructors (`langgraph.store.sqlite`).

from hitl_async.store.sqlite import SqliteStore

with SqliteStore.from_conn_string("memory.sqlite") as store:
    store.setup()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hitl_async.checkpoint.langgraph_names import SyncSetup, close_blocking, require_driver

require_driver("hitl_async_sqlite", "hitl-async-sqlite")

from hitl_async_sqlite.store import SqliteStore as _DriverStore  # noqa: E402

from hitl_async.checkpoint.sqlite import database_path  # noqa: E402
from hitl_async.store._langgraph_names import no_deserializer  # noqa: E402

__all__ = ["ConnStore", "SqliteStore"]


class ConnStore(_DriverStore):
    """The driver's store made from LangGraph's constructor arguments: the database file
    `conn` (a `sqlite3.Connection`, an `aiosqlite.Connection` or a path) is connected to;
    `deserializer` is refused."""

    def __init__(self, conn: Any, *, deserializer: Any = None, **options: Any) -> None:
        no_deserializer(deserializer, type(self).__name__)
        super().__init__(database_path(conn), **options)
        self.conn = conn


class SqliteStore(SyncSetup, ConnStore):
    """LangGraph's `SqliteStore(conn)`, with a blocking `setup()` from synchronous code."""

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn_string: str, **options: Any) -> Iterator[SqliteStore]:
        """A store on the database file `conn_string`, closed on exit."""
        store = cls(conn_string, **options)
        try:
            yield store
        finally:
            close_blocking(store)
