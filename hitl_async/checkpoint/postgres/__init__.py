"""`PostgresSaver` under LangGraph's name and constructors (`langgraph.checkpoint.postgres`).

    from hitl_async.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string("postgresql://user:pw@host:5432/db") as checkpointer:
        checkpointer.setup()
        graph = builder.compile(checkpointer=checkpointer)

It is the `hitl-async-postgres` driver's saver (`pip install hitl-async-postgres`; asyncpg with
its own pool). Given a psycopg connection (LangGraph's `PostgresSaver(conn)`), it connects to
the same database with the same credentials.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from hitl_async.checkpoint.langgraph_names import (
    SyncSetup,
    close_blocking,
    no_serde,
    require_driver,
)

require_driver("hitl_async_postgres", "hitl-async-postgres")

import hitl_async_postgres  # noqa: E402 - after the check that names the missing distribution
from hitl_async_postgres._url import split_url  # noqa: E402

__all__ = ["PostgresSaver", "postgres_url"]


def postgres_url(conn: Any) -> str:
    """A `postgresql://` URL for `conn`: a URL as is, or a psycopg connection's (or pool's)
    server, database and credentials."""
    if isinstance(conn, str):
        return conn
    conninfo = getattr(conn, "conninfo", None)  # psycopg_pool.ConnectionPool
    if isinstance(conninfo, str) and "://" in conninfo:
        return conninfo
    info = getattr(conn, "info", None)  # psycopg.Connection
    if info is not None and hasattr(info, "get_parameters"):
        params = dict(info.get_parameters())
        user = quote(params.get("user", ""), safe="")
        password = getattr(info, "password", None)
        auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        host = params.get("host", "localhost")
        host = f"[{host}]" if ":" in host else host
        port = params.get("port", "5432")
        return f"postgresql://{auth}{host}:{port}/{quote(params.get('dbname', ''), safe='')}"
    raise TypeError(
        f"cannot tell which PostgreSQL database {conn!r} is connected to: pass a "
        "postgresql:// URL or a psycopg connection, or use PostgresSaver.from_conn_string(url)"
    )


def saver_arguments(conn: Any, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The driver's `(dsn, options)` for `conn`; options in the URL's query string apply too,
    keyword options win."""
    dsn, url_options = split_url(postgres_url(conn))
    return dsn, {**url_options, **options}


class PostgresSaver(SyncSetup, hitl_async_postgres.PostgresSaver):
    """LangGraph's `PostgresSaver(conn)`: checkpoints in the database of `conn` (a URL or a
    psycopg connection). `pipe` and `serde` are LangGraph's; `pipe` is ignored (the driver
    pipelines by itself) and `serde` is refused (use `compile(serializer=...)`)."""

    def __init__(self, conn: Any, pipe: Any = None, serde: Any = None, **options: Any) -> None:
        no_serde(serde, type(self).__name__)
        dsn, merged = saver_arguments(conn, options)
        super().__init__(dsn, **merged)
        self.conn = conn

    @classmethod
    @contextmanager
    def from_conn_string(
        cls, conn_string: str, *, pipeline: bool = False, **options: Any
    ) -> Iterator[PostgresSaver]:
        """A saver on `conn_string`, closed (its pool too) on exit."""
        saver = cls(conn_string, **options)
        try:
            yield saver
        finally:
            close_blocking(saver)
