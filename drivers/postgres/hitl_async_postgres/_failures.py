"""How the PostgreSQL driver names a failure: `unavailable` maps an error of the server or the
connection to `StoreUnavailableError` (transient or not), `GONE` are the errors of a schema
dropped under a saver."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg

from hitl_async.errors import HitlError, StoreUnavailableError

__all__ = ["GONE", "unavailable", "where_dsn"]


def unavailable(dsn: str, exc: Exception) -> StoreUnavailableError | None:
    """`StoreUnavailableError` for a failure of the server or the connection (dropped, killed,
    refused, timed out, the server shutting down or starting up, its disk full, read-only);
    None for any other error (SQL, data, programming errors pass through unchanged)."""
    if isinstance(exc, HitlError):
        return None
    transient = True
    if isinstance(exc, asyncpg.PostgresConnectionError):  # SQLSTATE 08: connection exception
        cause = "the connection to the server broke"
    elif isinstance(
        exc,
        asyncpg.AdminShutdownError | asyncpg.CrashShutdownError | asyncpg.CannotConnectNowError,
    ):
        cause = "the server terminated the connection, is shutting down or is starting up"
    elif isinstance(exc, asyncpg.TooManyConnectionsError):
        cause = "the server has no connection slot free"
    elif isinstance(exc, asyncpg.DiskFullError):
        cause, transient = "the server's disk is full", False
    elif isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        cause, transient = "the server only accepts reads (a standby, or read-only)", False
    elif (
        isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc) and "pool" not in str(exc)
    ):
        cause = "the connection was closed"
    elif isinstance(exc, asyncpg.InternalClientError) and "cannot switch to state" in str(exc):
        # asyncpg's state after the server closed an idle connection (pg_terminate_backend, a
        # restart) and before the pool noticed; raised before the query is sent.
        cause = "the connection broke while idle"
    elif isinstance(exc, TimeoutError):
        cause = "the server did not answer in time"
    elif isinstance(exc, OSError):
        cause = "the server cannot be reached"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):  # 3D000, at connect
        cause, transient = _no_database(dsn), False
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):  # 28000, 28P01
        cause = "the server refused the login: check the user and password in the URL"
        transient = False
    else:
        return None
    parts = urlsplit(dsn)
    where = f"PostgreSQL {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return StoreUnavailableError(where, f"{cause} ({detail})", transient=transient)


def _no_database(dsn: str) -> str:
    """What to say when the URL's database does not exist: its name and how to create it."""
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    name = parts.path.lstrip("/") or user
    host = parts.hostname or "localhost"
    return (
        f"database {name!r} does not exist on {host}:{parts.port or 5432}; create it "
        f"(`createdb -h {host} -p {parts.port or 5432} -U {user} {name}`, or CREATE DATABASE in "
        "psql) or fix the database name in the URL"
    )


# What the server says when the schema (or its tables, or functions) was dropped under us.
GONE = (
    asyncpg.UndefinedTableError,
    asyncpg.InvalidSchemaNameError,
    asyncpg.UndefinedFunctionError,
)


def where_dsn(dsn: str) -> str:
    """Host, port and database of `dsn`, for messages."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
