"""The PostgreSQL driver's node cache (`CacheStore`): table `node_cache` of the driver's schema
(migration 8, `_sql.v8_cache`), expiry judged by the server's clock; expired rows are skipped on
read and deleted when their key is written again or the cache is cleared."""

from __future__ import annotations

from collections.abc import Sequence

from hitl_async.checkpoint.capabilities import CacheStore
from hitl_async_postgres._connections import PostgresConnections
from hitl_async_postgres._schema import quote_schema

__all__ = ["PostgresCache"]


class PostgresCache(PostgresConnections, CacheStore):
    """The node cache of `PostgresSaver`."""

    def _cache_table(self) -> str:
        return f"{quote_schema(self.schema)}.node_cache"

    async def cache_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """Cached node results of `keys` that have not expired."""
        if not keys:
            return {}
        pool = await self._pool()
        rows = await pool.fetch(
            f"SELECT c.ns, c.key, c.value FROM {self._cache_table()} c "
            "JOIN unnest($1::text[], $2::text[]) AS k(ns, key) ON c.ns = k.ns AND c.key = k.key "
            "WHERE c.expires_at IS NULL OR c.expires_at > clock_timestamp()",
            [ns for ns, _ in keys],
            [key for _, key in keys],
        )
        return {(r["ns"], r["key"]): bytes(r["value"]) for r in rows}

    async def cache_set(self, entries: Sequence[tuple[str, str, bytes, float | None]]) -> None:
        """Cache node results, each for its ttl (seconds; None: until cleared)."""
        if not entries:
            return
        pool = await self._pool()
        await pool.execute(
            f"INSERT INTO {self._cache_table()} AS c (ns, key, value, expires_at) "
            "SELECT ns, key, value, CASE WHEN ttl IS NULL THEN NULL "
            "ELSE clock_timestamp() + make_interval(secs => ttl) END "
            "FROM unnest($1::text[], $2::text[], $3::bytea[], $4::float8[]) "
            "AS e(ns, key, value, ttl) "
            "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, "
            "expires_at = excluded.expires_at",
            [e[0] for e in entries],
            [e[1] for e in entries],
            [bytes(e[2]) for e in entries],
            [e[3] for e in entries],
        )

    async def cache_clear(self, namespaces: Sequence[str] | None = None) -> None:
        """Delete the cached results of `namespaces` (None: all), and every expired one."""
        pool = await self._pool()
        table = self._cache_table()
        if namespaces is None:
            await pool.execute(f"DELETE FROM {table}")
            return
        await pool.execute(
            f"DELETE FROM {table} WHERE ns = ANY($1::text[]) OR expires_at <= clock_timestamp()",
            list(namespaces),
        )
