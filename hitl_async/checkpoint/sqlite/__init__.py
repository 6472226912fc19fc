"""`SqliteSaver` under LangGraph's name and constructors (`langgraph.checkpoint.sqlite`).

A port keeps its saver line and renames the import::

    from hitl_async.checkpoint.sqlite import SqliteSaver

    with SqliteSaver.from_conn_string("checkpoints.sqlite") as checkpointer:
        graph = builder.compile(checkpointer=checkpointer)

It is the `hitl-async-sqlite` driver's saver (`pip install hitl-async-sqlite`): given a
`sqlite3.Connection`, it stores in that connection's database file through its own connection
(a `":memory:"` connection gets a private in-memory database).
"""

from __future__ import annotations

import inspect
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hitl_async.checkpoint.langgraph_names import (
    SyncSetup,
    close_blocking,
    no_serde,
    require_driver,
)

require_driver("hitl_async_sqlite", "hitl-async-sqlite")

import hitl_async_sqlite  # noqa: E402 - after the check that names the missing distribution

__all__ = ["SqliteSaver", "database_path"]


def database_path(conn: Any) -> str:
    """The file behind a `sqlite3.Connection` (or an `aiosqlite.Connection`), ":memory:" for an
    in-memory one; a path or `sqlite:` URL is returned as a path."""
    if isinstance(conn, (str, os.PathLike)):
        text = os.fspath(conn)
        return hitl_async_sqlite.parse_url(text)[0] if text.startswith("sqlite:") else text
    if isinstance(conn, sqlite3.Connection):
        for _, name, file in conn.execute("PRAGMA database_list").fetchall():
            if name == "main":
                return file or ":memory:"
    connector = getattr(conn, "_connector", None)  # aiosqlite: a closure over `database`
    if callable(connector):
        database = inspect.getclosurevars(connector).nonlocals.get("database")
        if isinstance(database, (str, os.PathLike)):
            text = os.fspath(database)
            return text if text in ("", ":memory:") else os.path.abspath(text)
    raise TypeError(
        f"cannot tell which database {conn!r} is connected to: pass a sqlite3.Connection, a "
        "path, or use SqliteSaver.from_conn_string(path)"
    )


class SqliteSaver(SyncSetup, hitl_async_sqlite.SqliteSaver):
    """LangGraph's `SqliteSaver(conn)`: checkpoints in the database `conn` is connected to.

    `conn` may also be a path. `serde` is refused (choose a serializer with
    `compile(serializer=...)`); other keywords are the driver's options (`busy_timeout`, ...).
    """

    def __init__(self, conn: sqlite3.Connection | str, *, serde: Any = None, **options: Any):
        no_serde(serde, type(self).__name__)
        super().__init__(database_path(conn), **options)
        self.conn = conn

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn_string: str, **options: Any) -> Iterator[SqliteSaver]:
        """A saver on the database file `conn_string` (a path or ":memory:"), closed on exit."""
        saver = cls(conn_string, **options)
        try:
            yield saver
        finally:
            close_blocking(saver)
