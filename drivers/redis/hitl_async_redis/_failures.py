"""What a failed Redis call means to the engine: the server unavailable, the store lost (emptied
or replaced), or a lease taken over; each mapped to the `hitl_async` error that says so."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hitl_async.errors import LeaseLostError, StoreLostError, StoreUnavailableError
from hitl_async_redis import _scripts

__all__ = ["lease_lost", "mapped", "store_lost", "unavailable"]


def unavailable(url: str, exc: Exception) -> StoreUnavailableError | None:
    """`StoreUnavailableError` for a failure of the server or the connection (dropped,
    killed, refused, timed out, loading its data set; out of memory, a read-only replica,
    refusing writes after a failed save; a refused login, a database number it lacks); None
    for any other error. A connection that failed is dropped by the pool, so the next call
    (the engine's retry) gets a new one."""
    transient = True
    if isinstance(exc, AuthenticationError | AuthorizationError):
        cause = "the server refused the login: check the user and password in the URL"
        transient = False
    elif isinstance(exc, ResponseError) and "DB index is out of range" in str(exc):
        db = urlsplit(url).path.lstrip("/")
        cause = (
            f"the server has no database {db or 'of that number'}: use a number below its "
            "`databases` setting (16 by default) in the URL"
        )
        transient = False
    elif isinstance(exc, RedisConnectionError):  # includes BusyLoadingError
        cause = "the connection to the server broke or cannot be made"
    elif isinstance(exc, RedisTimeoutError | TimeoutError):
        cause = "the server did not answer in time"
    elif isinstance(exc, ReadOnlyError):
        cause, transient = "the server is a read-only replica", False
    elif isinstance(exc, ResponseError) and str(exc).startswith(("OOM", "MISCONF")):
        cause, transient = "the server refuses writes (out of memory, or a failed save)", False
    elif isinstance(exc, OSError) and not isinstance(exc, StoreUnavailableError):
        cause = "the server cannot be reached"
    else:
        return None
    parts = urlsplit(url)
    where = f"Redis {parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return StoreUnavailableError(where, f"{cause} ({detail})", transient=transient)


def store_lost(url: str, prefix: str, store_id: bytes | None, found: bytes) -> StoreLostError:
    """The error for a store whose id is no longer `store_id` (`found`: the id it has now, if
    any): the Redis behind the URL was emptied or replaced."""
    parts = urlsplit(url)
    host = f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"
    where = f"Redis {host} (prefix {prefix!r})"
    if not found:
        cause = (
            "it was emptied (a restart without persistence, a FLUSHDB/FLUSHALL, or its keys "
            "deleted) while this saver was using it"
        )
    else:
        cause = (
            f"it now holds another store (id {found.decode(errors='replace')!r}, not "
            f"{(store_id or b'').decode(errors='replace')!r})"
        )
    return StoreLostError(where, cause)


def mapped(url: str, prefix: str, store_id: bytes | None, exc: Exception) -> Exception:
    """`exc`, or the `StoreUnavailableError` / `StoreLostError` it stands for (caused by
    it)."""
    if isinstance(exc, ResponseError) and str(exc).startswith(_scripts.STORE_LOST):
        lost = store_lost(url, prefix, store_id, str(exc)[len(_scripts.STORE_LOST) + 1 :].encode())
        lost.__cause__ = exc
        lost.__suppress_context__ = True
        return lost
    error = unavailable(url, exc)
    if error is None:
        return exc
    error.__cause__ = exc
    error.__suppress_context__ = True
    return error


def lease_lost(thread_id: str, token: int, reply: list[Any]) -> LeaseLostError:
    """The error of a script that refused a lease: `reply[1]` is the thread's current token."""
    current = reply[1]
    return LeaseLostError(thread_id, token, int(current) if current else None)
