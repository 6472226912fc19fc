"""The SQLite driver's node cache (`CacheStore`): table `node_cache`, one row per entry,
expired rows skipped on read and deleted when their key is written again or cleared."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

from hitl_async.checkpoint.capabilities import CacheStore
from hitl_async_sqlite._connection import SqliteConnection
from hitl_async_sqlite._ops import Job

__all__ = ["SqliteCache", "cache_clear_job", "cache_set_job", "get_cached"]


def get_cached(
    conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], bytes]:
    """The entries of `keys` that have not expired."""
    now = time.time()
    found: dict[tuple[str, str], bytes] = {}
    for ns, key in keys:
        row = conn.execute(
            "SELECT value FROM node_cache WHERE ns = ? AND key = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (ns, key, now),
        ).fetchone()
        if row is not None:
            found[(ns, key)] = bytes(row[0])
    return found


def cache_set_job(entries: Sequence[tuple[str, str, bytes, float | None]]) -> Job:
    """A job storing `(namespace, key, value, ttl)` entries."""
    now = time.time()
    rows = [
        (ns, key, bytes(value), None if ttl is None else now + ttl)
        for ns, key, value, ttl in entries
    ]

    def job(conn: sqlite3.Connection) -> None:
        conn.executemany(
            "INSERT INTO node_cache (ns, key, value, expires_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, "
            "expires_at = excluded.expires_at",
            rows,
        )

    return job


def cache_clear_job(namespaces: Sequence[str] | None) -> Job:
    """A job deleting the entries of `namespaces` (None: all), and every expired one."""
    names = None if namespaces is None else list(namespaces)

    def job(conn: sqlite3.Connection) -> None:
        if names is None:
            conn.execute("DELETE FROM node_cache")
            return
        conn.executemany("DELETE FROM node_cache WHERE ns = ?", [(n,) for n in names])
        conn.execute("DELETE FROM node_cache WHERE expires_at <= ?", (time.time(),))

    return job


class SqliteCache(SqliteConnection, CacheStore):
    """Node results cached in the saver's file (`compile(cache=saver)`)."""

    async def cache_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """Cached node results of `keys` that have not expired (table `node_cache`)."""
        return await self._read(get_cached, list(keys)) if keys else {}

    async def cache_set(self, entries: Sequence[tuple[str, str, bytes, float | None]]) -> None:
        """Cache node results, each for its ttl (seconds; None: until cleared)."""
        if entries:
            await self._write(cache_set_job(entries))

    async def cache_clear(self, namespaces: Sequence[str] | None = None) -> None:
        """Delete the cached results of `namespaces` (None: all)."""
        await self._write(cache_clear_job(namespaces))
