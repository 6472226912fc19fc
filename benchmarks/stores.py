"""Fresh checkpoint stores per driver and engine, their on-store footprint, and the raw floor.

Every store is new and private to one workload repetition, and removed afterwards:

- sqlite: a new file in a temporary directory (both engines; WAL, synchronous=NORMAL for both
  so they pay the same durability cost — hitl-async's default, set on LangGraph's connection);
- postgres: a new schema. hitl-async: `connect(url, schema=...)` then `destroy()`; LangGraph:
  `AsyncPostgresSaver` on a psycopg connection whose `search_path` is that schema, dropped after;
- redis: a new key prefix (hitl-async: `prefix=`, then `destroy()`; LangGraph's plainredis saver:
  `prefix=`, then only its keys are deleted with SCAN + DEL — never FLUSHALL);
- memory: a new in-memory saver.

`Store.footprint()` reads back how many bytes the store holds and how many checkpoints, from the
store itself: SQL sums of column sizes over the engine's tables (sqlite `length(CAST(c AS BLOB))`,
postgres `pg_column_size(c)`), the sizes of every key's fields, members and values under the
prefix in Redis, and the bytes and strings held by an in-memory saver's dicts.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

DRIVERS = ["memory", "sqlite", "postgres", "redis"]
DURABLE = ["sqlite", "postgres", "redis"]

HITL_TABLES = {"sqlite": ("threads", "checkpoints", "blobs", "writes")}
HITL_TABLES["postgres"] = HITL_TABLES["sqlite"]
LG_TABLES = {
    "sqlite": ("checkpoints", "writes"),
    "postgres": ("checkpoints", "checkpoint_blobs", "checkpoint_writes"),
}


@dataclass(frozen=True)
class Servers:
    """Where the database servers are."""

    postgres: str = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    redis: str = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    langgraph_redis_pool: int | None = None
    """None: LangGraph's Redis saver builds its own client (redis-py's default pool, which
    fails under a few dozen concurrent runs). N: it gets a client on a blocking pool of N
    connections, as `--langgraph-redis-pool N` asks."""


@dataclass(frozen=True)
class Footprint:
    """What a store holds: payload bytes and checkpoint count."""

    bytes: int
    checkpoints: int


@dataclass
class Store:
    """A fresh saver for one engine on one driver, and a way to read back its footprint."""

    saver: Any
    footprint: Callable[[], Awaitable[Footprint]]
    url: str = ""
    """How another process reaches the same store: `hitl_async.connect(url, **options)`
    (hitl-async stores only; "memory://" cannot be shared)."""
    options: dict[str, Any] = field(default_factory=dict)


def _token() -> str:
    return uuid.uuid4().hex[:12]


# -- footprints ----------------------------------------------------------------------------------


def _object_bytes(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes of the bytes/str payload reachable from `obj` (each object counted once)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, bytes | bytearray | memoryview):
        return len(obj)
    if isinstance(obj, str):
        return len(obj.encode())
    if isinstance(obj, int | float):
        return 8
    if isinstance(obj, dict):
        return sum(_object_bytes(k, seen) + _object_bytes(v, seen) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return sum(_object_bytes(v, seen) for v in obj)
    if is_dataclass(obj):
        return sum(_object_bytes(getattr(obj, f.name), seen) for f in fields(obj))
    return 0


def _hitl_memory_footprint(saver: Any) -> Footprint:
    spaces = [ns for by_ns in saver._threads.values() for ns in by_ns.values()]
    return Footprint(_object_bytes(saver._threads), sum(len(ns.checkpoints) for ns in spaces))


def _lg_memory_footprint(saver: Any) -> Footprint:
    data = [dict(saver.storage), dict(saver.writes), dict(saver.blobs)]
    count = sum(len(cps) for by_ns in saver.storage.values() for cps in by_ns.values())
    return Footprint(_object_bytes(data), count)


def _sqlite_footprint(path: str, tables: tuple[str, ...]) -> Footprint:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        total = 0
        for table in tables:
            cols = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            expr = " + ".join(f"coalesce(length(CAST({c} AS BLOB)), 0)" for c in cols)
            total += conn.execute(f"SELECT coalesce(sum({expr}), 0) FROM {table}").fetchone()[0]
        count = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        return Footprint(int(total), int(count))
    finally:
        conn.close()


async def _postgres_footprint(url: str, schema: str, tables: tuple[str, ...]) -> Footprint:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        total = 0
        for table in tables:
            cols = await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = $1 AND table_name = $2",
                schema,
                table,
            )
            expr = " + ".join(f'coalesce(pg_column_size("{r[0]}"), 0)' for r in cols)
            total += await conn.fetchval(
                f'SELECT coalesce(sum({expr}), 0) FROM "{schema}"."{table}"'
            )
        count = await conn.fetchval(f'SELECT count(*) FROM "{schema}".checkpoints')
        return Footprint(int(total), int(count))
    finally:
        await conn.close()


async def _redis_footprint(
    url: str, prefix: str, is_checkpoint: Callable[[bytes], bool]
) -> Footprint:
    """Sum of key names, hash fields and values, set/zset members (+8 per score), strings."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        total = count = 0
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            total += len(key)
            kind = (await client.type(key)).decode()
            if kind == "string":
                total += await client.strlen(key)
            elif kind == "hash":
                items = await client.hgetall(key)
                total += sum(len(k) + len(v) for k, v in items.items())
            elif kind == "zset":
                total += sum(len(m) + 8 for m in await client.zrange(key, 0, -1))
            elif kind == "set":
                total += sum(len(m) for m in await client.smembers(key))
            count += await is_checkpoint_count(client, key, kind, is_checkpoint)
        return Footprint(total, count)
    finally:
        await client.aclose()


async def is_checkpoint_count(
    client: Any, key: bytes, kind: str, is_checkpoint: Callable[[bytes], bool]
) -> int:
    """Checkpoints a Redis key holds: one per string key, or one per field of a hash key."""
    if not is_checkpoint(key):
        return 0
    return int(await client.hlen(key)) if kind == "hash" else 1


# -- stores --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def open_store(
    engine: str, driver: str, servers: Servers, sync: bool = False
) -> AsyncIterator[Store]:
    """A fresh store for `engine` ("hitl-async" or "langgraph") on `driver`; removed on exit.
    `sync`: for the sync API (`invoke`/`stream`): LangGraph's sync savers (`SqliteSaver`,
    `PostgresSaver`, plainredis `RedisSaver`); hitl-async's savers serve both APIs."""
    if engine == "hitl-async":
        opener = _hitl_store
    else:
        opener = _langgraph_sync_store if sync else _langgraph_store
    async with opener(driver, servers) as store:
        yield store


@contextlib.asynccontextmanager
async def _hitl_store(driver: str, servers: Servers) -> AsyncIterator[Store]:
    import hitl_async

    if driver == "memory":
        saver = hitl_async.connect("memory://")

        async def mem() -> Footprint:
            return _hitl_memory_footprint(saver)

        yield Store(saver, mem, "memory://")
        return
    if driver == "sqlite":
        with tempfile.TemporaryDirectory(prefix="hitl-bench-") as tmp:
            path = os.path.join(tmp, "hitl.db")
            saver = hitl_async.connect(f"sqlite:///{path}")
            await saver.setup()
            try:

                async def lite() -> Footprint:
                    return _sqlite_footprint(path, HITL_TABLES["sqlite"])

                yield Store(saver, lite, f"sqlite:///{path}")
            finally:
                await saver.aclose()
        return
    if driver == "postgres":
        schema = f"bench_{_token()}"
        saver = hitl_async.connect(servers.postgres, schema=schema)
        await saver.setup()
        try:

            async def pg() -> Footprint:
                return await _postgres_footprint(servers.postgres, schema, HITL_TABLES["postgres"])

            yield Store(saver, pg, servers.postgres, {"schema": schema})
        finally:
            try:
                await saver.destroy()
            finally:
                await saver.aclose()
        return
    if driver == "redis":
        prefix = f"bench-{_token()}"
        saver = hitl_async.connect(servers.redis, prefix=prefix)
        await saver.setup()
        try:

            async def rd() -> Footprint:
                return await _redis_footprint(servers.redis, prefix, lambda k: b":cp:" in k)

            yield Store(saver, rd, servers.redis, {"prefix": prefix})
        finally:
            try:
                await saver.destroy()
            finally:
                await saver.aclose()
        return
    raise ValueError(f"unknown driver {driver!r}")


@contextlib.asynccontextmanager
async def _langgraph_store(driver: str, servers: Servers) -> AsyncIterator[Store]:
    if driver == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        saver = InMemorySaver()

        async def mem() -> Footprint:
            return _lg_memory_footprint(saver)

        yield Store(saver, mem)
        return
    if driver == "sqlite":
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        with tempfile.TemporaryDirectory(prefix="lg-bench-") as tmp:
            path = os.path.join(tmp, "langgraph.db")
            async with aiosqlite.connect(path) as conn:
                saver = AsyncSqliteSaver(conn)
                await saver.setup()  # sets journal_mode=WAL
                await conn.execute("PRAGMA synchronous=NORMAL")

                async def lite() -> Footprint:
                    return _sqlite_footprint(path, LG_TABLES["sqlite"])

                yield Store(saver, lite)
        return
    if driver == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg import AsyncConnection
        from psycopg.rows import dict_row

        schema = f"lgbench_{_token()}"
        async with await AsyncConnection.connect(servers.postgres, autocommit=True) as admin:
            await admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            async with await AsyncConnection.connect(
                servers.postgres,
                autocommit=True,
                prepare_threshold=0,
                row_factory=dict_row,
                options=f"-c search_path={schema}",
            ) as conn:
                saver = AsyncPostgresSaver(conn)
                await saver.setup()

                async def pg() -> Footprint:
                    return await _postgres_footprint(
                        servers.postgres, schema, LG_TABLES["postgres"]
                    )

                yield Store(saver, pg)
        finally:
            async with await AsyncConnection.connect(servers.postgres, autocommit=True) as admin:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return
    if driver == "redis":
        from langgraph_checkpoint_plainredis import AsyncRedisSaver

        prefix = f"lgbench-{_token()}"
        pool = None
        if servers.langgraph_redis_pool is None:
            saver = AsyncRedisSaver(url=servers.redis, prefix=prefix)
        else:
            from redis.asyncio import BlockingConnectionPool, Redis

            pool = BlockingConnectionPool.from_url(
                servers.redis, max_connections=servers.langgraph_redis_pool, timeout=None
            )
            saver = AsyncRedisSaver(Redis(connection_pool=pool), prefix=prefix)
        try:

            async def rd() -> Footprint:
                return await _redis_footprint(
                    servers.redis, prefix, lambda k: k.startswith(f"{prefix}:cp:".encode())
                )

            yield Store(saver, rd)
        finally:
            try:
                await _delete_prefix(servers.redis, prefix)
            finally:
                await saver.aclose()
                if pool is not None:
                    await pool.disconnect()
        return
    raise ValueError(f"unknown driver {driver!r}")


@contextlib.asynccontextmanager
async def _langgraph_sync_store(driver: str, servers: Servers) -> AsyncIterator[Store]:
    """LangGraph's sync savers, set up as `_langgraph_store` sets up the async ones."""
    if driver == "memory":
        async with _langgraph_store(driver, servers) as store:
            yield store
        return
    if driver == "sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        with tempfile.TemporaryDirectory(prefix="lg-bench-") as tmp:
            path = os.path.join(tmp, "langgraph.db")
            conn = sqlite3.connect(path, check_same_thread=False)
            try:
                saver = SqliteSaver(conn)
                saver.setup()  # sets journal_mode=WAL
                conn.execute("PRAGMA synchronous=NORMAL")

                async def lite() -> Footprint:
                    return _sqlite_footprint(path, LG_TABLES["sqlite"])

                yield Store(saver, lite)
            finally:
                conn.close()
        return
    if driver == "postgres":
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import AsyncConnection, Connection
        from psycopg.rows import dict_row

        schema = f"lgbench_{_token()}"
        async with await AsyncConnection.connect(servers.postgres, autocommit=True) as admin:
            await admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            with Connection.connect(
                servers.postgres,
                autocommit=True,
                prepare_threshold=0,
                row_factory=dict_row,
                options=f"-c search_path={schema}",
            ) as conn:
                saver = PostgresSaver(conn)
                saver.setup()

                async def pg() -> Footprint:
                    return await _postgres_footprint(
                        servers.postgres, schema, LG_TABLES["postgres"]
                    )

                yield Store(saver, pg)
        finally:
            async with await AsyncConnection.connect(servers.postgres, autocommit=True) as admin:
                await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return
    if driver == "redis":
        from langgraph_checkpoint_plainredis import RedisSaver

        prefix = f"lgbench-{_token()}"
        saver = RedisSaver(url=servers.redis, prefix=prefix)
        try:

            async def rd() -> Footprint:
                return await _redis_footprint(
                    servers.redis, prefix, lambda k: k.startswith(f"{prefix}:cp:".encode())
                )

            yield Store(saver, rd)
        finally:
            try:
                await _delete_prefix(servers.redis, prefix)
            finally:
                saver.close()
        return
    raise ValueError(f"unknown driver {driver!r}")


async def _delete_prefix(url: str, prefix: str) -> None:
    """Delete only the keys under `prefix:` (SCAN + UNLINK)."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


# -- the raw floor -------------------------------------------------------------------------------


async def floor(driver: str, servers: Servers, size: int, writes: int) -> float:
    """Median µs of one committed write of `size` bytes, through the driver's client library.

    sqlite: stdlib sqlite3 (the library hitl-async's SQLite driver uses) INSERT + commit in WAL,
    synchronous=NORMAL, run in a worker thread from async code — one thread hop per write, as
    the driver makes;
    postgres: asyncpg INSERT in autocommit into a table of a fresh schema (dropped after);
    redis: redis.asyncio SET of a fresh key (deleted after).
    """
    payload = os.urandom(max(1, int(size)))
    samples: list[float] = []
    if driver == "sqlite":
        import sqlite3

        import anyio

        with tempfile.TemporaryDirectory(prefix="floor-") as tmp:
            conn = sqlite3.connect(
                os.path.join(tmp, "floor.db"), isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE floor (id INTEGER PRIMARY KEY, data BLOB)")

                def write() -> None:
                    conn.execute("BEGIN")
                    conn.execute("INSERT INTO floor (data) VALUES (?)", (payload,))
                    conn.execute("COMMIT")

                for _ in range(writes + 5):
                    t0 = time.perf_counter()
                    await anyio.to_thread.run_sync(write)
                    samples.append(time.perf_counter() - t0)
            finally:
                conn.close()
    elif driver == "postgres":
        import asyncpg

        schema = f"floor_{_token()}"
        conn = await asyncpg.connect(servers.postgres)
        try:
            await conn.execute(f'CREATE SCHEMA "{schema}"')
            await conn.execute(
                f'CREATE TABLE "{schema}".floor (id bigserial PRIMARY KEY, data bytea)'
            )
            insert = await conn.prepare(f'INSERT INTO "{schema}".floor (data) VALUES ($1)')
            for _ in range(writes + 5):
                t0 = time.perf_counter()
                await insert.fetch(payload)
                samples.append(time.perf_counter() - t0)
        finally:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
    elif driver == "redis":
        from redis.asyncio import Redis

        prefix = f"floor-{_token()}"
        client = Redis.from_url(servers.redis)
        try:
            for i in range(writes + 5):
                t0 = time.perf_counter()
                await client.set(f"{prefix}:{i}", payload)
                samples.append(time.perf_counter() - t0)
        finally:
            await _delete_prefix(servers.redis, prefix)
            await client.aclose()
    else:
        raise ValueError(f"no floor for driver {driver!r}")
    return statistics.median(samples[5:]) * 1e6  # the first five warm up


# -- versions ------------------------------------------------------------------------------------


async def server_versions(servers: Servers, drivers: list[str]) -> dict[str, str]:
    """Versions of the stores in use (an error text when a server is not reachable)."""
    found: dict[str, str] = {}
    if "sqlite" in drivers:
        found["sqlite"] = sqlite3.sqlite_version
    if "postgres" in drivers:
        try:
            import asyncpg

            conn = await asyncpg.connect(servers.postgres)
            try:
                found["postgres"] = str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()
        except Exception as exc:
            found["postgres"] = f"unreachable: {exc!r}"
    if "redis" in drivers:
        try:
            from redis.asyncio import Redis

            client = Redis.from_url(servers.redis)
            try:
                found["redis"] = str((await client.info("server"))["redis_version"])
            finally:
                await client.aclose()
        except Exception as exc:
            found["redis"] = f"unreachable: {exc!r}"
    return found
