"""The long-term memory store on PostgreSQL: `connect_store("postgresql://...", schema=...)`.

Items live in `store_items` (vectors in `store_vectors`) of the same schema as the checkpoints,
on a plain server (no extension needed). Values are `json` columns (their text is kept exactly,
so a float never comes back as an int); namespaces and keys use the "C" collation, so prefixes
are index range scans and orders match Python's. Filters on scalars run in SQL, others in
Python; semantic search scores every candidate in Python (exact cosine), as on SQLite.

Each event loop gets its own asyncpg pool (synchronous calls run on hitl-async's shared
background loop), created on first use, which also creates the tables if needed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from hitl_async.store.backend import PutRow, StoredRow
from hitl_async.store.base import IndexConfig, TTLConfig
from hitl_async.store.driver import BackendStore, grouping_options
from hitl_async.store.filters import Condition
from hitl_async_postgres._migrate import DEFAULT_SCHEMA
from hitl_async_postgres._store_sql import (
    COLUMNS,
    Sql,
    page_sql,
    schema_sql,
    scope,
    upsert_one_sql,
    upsert_sql,
    where_sql,
)
from hitl_async_postgres._url import split_url

__all__ = ["PostgresStore", "PostgresStoreBackend", "StoreConnection", "store_from_url"]


def _quote(name: str) -> str:
    if not name or "\x00" in name:
        raise ValueError(f"invalid schema name {name!r}")
    return '"' + name.replace('"', '""') + '"'


class StoreConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query: the store keeps no session
    state (no SET, LISTEN, cursors or advisory locks held past a transaction), so resetting
    would only cost a round trip per call."""

    def get_reset_query(self) -> str:
        return ""


class _Pool:
    """An event loop's pool, plus one connection kept out of it for single statements: when that
    connection is free a statement uses it directly, skipping the pool's checkout (a few tens of
    microseconds per call); when it is busy the statement takes a pooled connection."""

    def __init__(self, pool: asyncpg.Pool, own: PoolConnectionProxy | None) -> None:
        self.pool = pool
        self.own = own
        self.lock = asyncio.Lock()

    def acquire(self) -> Any:
        return self.pool.acquire()

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        if self.own is not None and not self.lock.locked():
            async with self.lock:
                return await self.own.fetch(sql, *args)
        return await self.pool.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        if self.own is not None and not self.lock.locked():
            async with self.lock:
                return await self.own.fetchrow(sql, *args)
        return await self.pool.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self.pool.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> str:
        if self.own is not None and not self.lock.locked():
            async with self.lock:
                return await self.own.execute(sql, *args)
        return await self.pool.execute(sql, *args)

    async def close(self) -> None:
        if self.own is not None:
            await self.pool.release(self.own)
        await self.pool.close()

    def terminate(self) -> None:
        self.pool.terminate()


def _row(r: asyncpg.Record) -> StoredRow:
    return StoredRow(r[0], r[1], r[2], r[3], r[4], r[5])


def _columns(puts: list[PutRow]) -> tuple[list[Any], ...]:
    """The upsert's parameters: one array per column."""
    return (
        [p.namespace for p in puts],
        [p.key for p in puts],
        [p.value.decode() for p in puts],
        [p.now_us for p in puts],
        [p.expires_us for p in puts],
        [p.ttl_minutes for p in puts],
    )


class PostgresStoreBackend:
    """`StoreBackend` on an asyncpg pool per event loop."""

    sync_capable = False
    writes_with_reads = True
    """A batch's puts can ride on its reads' statement (`read_many(..., puts)`)."""

    def __init__(
        self, dsn: str, *, schema: str = DEFAULT_SCHEMA, min_size: int = 1, max_size: int = 10
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.s = _quote(schema)
        self.min_size, self.max_size = min_size, max_size
        self._pools: dict[asyncio.AbstractEventLoop, _Pool] = {}
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def pushdown(self, conditions: tuple[Condition, ...]) -> bool:
        # A NUL cannot be sent to PostgreSQL (and no stored string has one): Python answers.
        return all(
            c.scalar and not (isinstance(c.operand, str) and "\x00" in c.operand)
            for c in conditions
        )

    async def _pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            pool = self._pools.get(loop)
            if pool is None:
                for old in [lp for lp in self._pools if lp.is_closed()]:
                    self._pools.pop(old).terminate()
                created = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    connection_class=StoreConnection,
                )
                async with created.acquire() as conn, conn.transaction():
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext($1))", f"hitl-store:{self.schema}"
                    )
                    await conn.execute(schema_sql(self.s))
                # One connection is kept for single statements, if the pool can spare one.
                own = await created.acquire() if self.max_size >= 2 else None
                pool = _Pool(created, own)
                self._pools[loop] = pool
        return pool

    async def setup(self) -> None:
        await self._pool()

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        pool = self._pools.pop(loop, None)
        if pool is not None:
            await pool.close()
        for other in list(self._pools):  # pools of other loops: closed without awaiting
            self._pools.pop(other).terminate()

    async def destroy(self) -> None:
        """Drop the store's tables, and the schema when nothing else is left in it (tests)."""
        pool = await self._pool()
        await pool.execute(f"DROP TABLE IF EXISTS {self.s}.store_vectors, {self.s}.store_items")
        if self.schema != "public":
            left = await pool.fetchval(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1",
                self.schema,
            )
            if not left:
                await pool.execute(f"DROP SCHEMA IF EXISTS {self.s} CASCADE")

    async def fetch(
        self, refs: list[tuple[str, str]], live_after: int | None, sync: bool
    ) -> list[StoredRow | None]:
        pool = await self._pool()
        live = "" if live_after is None else " AND (i.expires_us IS NULL OR i.expires_us > $3)"
        args: list[Any] = [live_after] if live_after is not None else []
        if len(refs) == 1:
            sql = (
                f"SELECT {COLUMNS} FROM {self.s}.store_items i "
                f"WHERE i.prefix = $1 AND i.key = $2{live}"
            )
            r = await pool.fetchrow(sql, refs[0][0], refs[0][1], *args)
            return [None if r is None else _row(r)]
        sql = (
            f"SELECT {COLUMNS} FROM {self.s}.store_items i JOIN unnest($1::text[], $2::text[]) "
            f"AS r(prefix, key) ON i.prefix = r.prefix AND i.key = r.key{live}"
        )
        found = {
            (r[0], r[1]): _row(r)
            for r in await pool.fetch(sql, [n for n, _ in refs], [k for _, k in refs], *args)
        }
        return [found.get(ref) for ref in refs]

    async def write(self, puts: list[PutRow], deletes: list[tuple[str, str]], sync: bool) -> None:
        pool = await self._pool()
        columns = _columns(puts)
        indexed = [p for p in puts if p.vectors is not None]
        if not deletes and not indexed:
            if len(puts) == 1:  # scalars, not six one-element arrays to encode
                one = puts[0]
                await pool.execute(
                    upsert_one_sql(self.s),
                    one.namespace,
                    one.key,
                    one.value.decode(),
                    one.now_us,
                    one.expires_us,
                    one.ttl_minutes,
                )
            else:
                await pool.execute(upsert_sql(self.s), *columns)
            return
        async with pool.acquire() as conn, conn.transaction():
            if deletes:
                gone = ([n for n, _ in deletes], [k for _, k in deletes])
                for table in ("store_vectors", "store_items"):
                    await conn.execute(
                        f"DELETE FROM {self.s}.{table} t USING unnest($1::text[], $2::text[]) "
                        "AS r(prefix, key) WHERE t.prefix = r.prefix AND t.key = r.key",
                        *gone,
                    )
            if puts:
                await conn.execute(upsert_sql(self.s), *columns)
            if indexed:
                await conn.execute(
                    f"DELETE FROM {self.s}.store_vectors t USING unnest($1::text[], $2::text[]) "
                    "AS r(prefix, key) WHERE t.prefix = r.prefix AND t.key = r.key",
                    [p.namespace for p in indexed],
                    [p.key for p in indexed],
                )
                vectors = [(p.namespace, p.key, f, b) for p in indexed for f, b in p.vectors or ()]
                if vectors:
                    await conn.executemany(
                        f"INSERT INTO {self.s}.store_vectors VALUES ($1, $2, $3, $4) "
                        "ON CONFLICT (prefix, key, field) DO UPDATE SET vector = excluded.vector",
                        vectors,
                    )

    async def touch(self, refs: list[tuple[str, str]], now_us: int, sync: bool) -> None:
        pool = await self._pool()
        await pool.execute(
            f"UPDATE {self.s}.store_items i "
            "SET expires_us = $3 + (i.ttl_minutes * 60000000)::bigint "
            "FROM unnest($1::text[], $2::text[]) AS r(prefix, key) "
            "WHERE i.prefix = r.prefix AND i.key = r.key AND i.ttl_minutes IS NOT NULL",
            [n for n, _ in refs],
            [k for _, k in refs],
            now_us,
        )

    async def query(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        limit: int | None,
        offset: int,
        live_after: int | None,
        sync: bool,
    ) -> list[StoredRow]:
        pool = await self._pool()
        sql = Sql()
        text = page_sql(self.s, sql, prefix, conditions, limit, offset, live_after)
        return [_row(r) for r in await pool.fetch(text, *sql.params)]

    async def candidates(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        live_after: int | None,
        sync: bool,
    ) -> list[tuple[StoredRow, list[bytes]]]:
        pool = await self._pool()
        sql = Sql()
        where = where_sql(self.s, sql, prefix, conditions, live_after)
        text = (
            f"SELECT {COLUMNS}, array_remove(array_agg(v.vector), NULL) FROM "
            f"{self.s}.store_items i LEFT JOIN {self.s}.store_vectors v "
            f"ON v.prefix = i.prefix AND v.key = i.key WHERE {where} "
            "GROUP BY i.prefix, i.key"
        )
        return [(_row(r), list(r[6])) for r in await pool.fetch(text, *sql.params)]

    async def read_many(
        self,
        refs: list[tuple[str, str]],
        requests: list[tuple[str, tuple[Condition, ...], int, int]],
        live_after: int | None,
        puts: list[PutRow] | None = None,
    ) -> tuple[list[StoredRow | None], list[list[StoredRow]]]:
        """The rows at `refs` and the pages of several searches (prefix, conditions, limit,
        offset), in one statement and one round trip; with `puts`, that statement also writes
        them (a data-modifying WITH: the reads see the state before it, as a batch's must)."""
        pool = await self._pool()
        sql = Sql()
        parts = []
        head = ""
        if puts:
            placeholders = tuple(sql.p(column) for column in _columns(puts))
            head = f"WITH w AS ({upsert_sql(self.s, placeholders)}) "
        if refs:
            names, keys = sql.p([n for n, _ in refs]), sql.p([k for _, k in refs])
            live = scope(sql, "", live_after)
            parts.append(
                f"SELECT -1 AS q, {COLUMNS} FROM {self.s}.store_items i JOIN "
                f"unnest({names}::text[], {keys}::text[]) AS r(prefix, key) "
                f"ON i.prefix = r.prefix AND i.key = r.key WHERE {live}"
            )
        for n, (prefix, conditions, limit, offset) in enumerate(requests):
            page = page_sql(self.s, sql, prefix, conditions, limit, offset, live_after)
            parts.append(f"SELECT {n} AS q, * FROM ({page}) p{n}")
        text = head + " UNION ALL ".join(parts) + " ORDER BY 1, 6 DESC, 2, 3"
        found: dict[tuple[str, str], StoredRow] = {}
        pages: list[list[StoredRow]] = [[] for _ in requests]
        for r in await pool.fetch(text, *sql.params):
            row = StoredRow(r[1], r[2], r[3], r[4], r[5], r[6])
            if r[0] < 0:
                found[(row.namespace, row.key)] = row
            else:
                pages[r[0]].append(row)
        return [found.get(ref) for ref in refs], pages

    async def namespaces(self, prefix: str, live_after: int | None, sync: bool) -> list[str]:
        pool = await self._pool()
        sql = Sql()
        where = scope(sql, prefix, live_after)
        text = f"SELECT DISTINCT i.prefix FROM {self.s}.store_items i WHERE {where}"
        return [r[0] for r in await pool.fetch(text, *sql.params)]

    async def sweep(self, now_us: int, sync: bool) -> int:
        pool = await self._pool()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"DELETE FROM {self.s}.store_vectors v USING {self.s}.store_items i "
                "WHERE v.prefix = i.prefix AND v.key = i.key AND i.expires_us <= $1",
                now_us,
            )
            status = await conn.execute(
                f"DELETE FROM {self.s}.store_items WHERE expires_us <= $1", now_us
            )
        return int(status.split()[-1])


class PostgresStore(BackendStore):
    """A store in PostgreSQL tables of `schema`, with TTLs and optional semantic search."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        group_commit: bool = True,
        batches_in_flight: int = 1,
        min_size: int = 1,
        max_size: int = 10,
    ) -> None:
        self.dsn = dsn
        self.pg = PostgresStoreBackend(dsn, schema=schema, min_size=min_size, max_size=max_size)
        super().__init__(
            self.pg,
            index=index,
            ttl=ttl,
            group_commit=group_commit,
            batches_in_flight=batches_in_flight,
        )

    async def destroy(self) -> None:
        """Drop the store's tables (and its schema if it is left empty); for tests."""
        await self.pg.destroy()

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.pg.schema!r})"


_SAVER_ONLY = {
    "command_timeout",
    "connect_timeout",
    "statement_cache_size",
    "pgbouncer",
    "setup",
    "max_batch",
    "warm_connections",
}


def store_from_url(url: str, **options: Any) -> PostgresStore:
    """The `hitl_async.stores` entry point: a `PostgresStore` for a `postgresql://` URL (the
    checkpoints' URL and options: `schema`, `min_size` and `max_size` apply, the saver's other
    options are accepted and left to it)."""
    dsn, url_options = split_url(url)
    merged = {k: v for k, v in {**url_options, **options}.items() if k not in _SAVER_ONLY}
    return PostgresStore(dsn, **grouping_options(merged))
