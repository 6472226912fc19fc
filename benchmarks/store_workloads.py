"""Long-term memory store workloads (issue #18): put, get and search latency, and throughput.

Each runs the Store API (`aput`, `aget`, `asearch`) of one engine's store on one driver:
hitl-async's `connect_store(url)` on the checkpoints' URL (same file, schema or prefix), and
LangGraph's matching store on the same connection as its saver — `InMemoryStore`,
`AsyncSqliteStore` (aiosqlite) and `AsyncPostgresStore` (psycopg). LangGraph has no store for a
plain Redis server (its Redis store needs the RediSearch and RedisJSON modules), so that cell is
"—". Every workload checks what it read back, so a fast wrong store cannot win.

- storeput: µs per `aput` of a ~120-byte memory, awaited one after another (fresh keys). The
  namespaces, keys and values are made before the clock starts (both engines), so the figure is
  the store's time, not the benchmark's string formatting.
- storeget: µs per `aget` of an existing item, one after another (keys made beforehand).
- storesearch: µs per `asearch(namespace, filter={"kind": "fact"}, limit=10)` in a namespace
  of `store_items` / 10 items, half of them facts (10 users, one namespace each); detail: an
  unfiltered search. (An equality filter: LangGraph's PostgresStore compares `$gt`-style
  operands as text, so a numeric range would not give it the right answer.)
- storemix: ops/s of 50 concurrent tasks (5 per user) each doing `store_mix_ops` operations:
  40% get, 40% put, 20% a filtered search of the task's user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.stores import Store
    from benchmarks.workloads import Engine, Result, Sizes

__all__ = ["LANGGRAPH_NO_STORE", "STORE_UNITS", "STORE_WORKLOADS"]

USERS = 10
LANGGRAPH_NO_STORE = (
    "LangGraph has no store for a plain Redis server (langgraph-store-redis needs Redis modules)"
)


def _driver(store: Store) -> str:
    url = store.url
    if url:
        return url.partition(":")[0].replace("postgresql", "postgres")
    name = type(store.saver).__name__
    return {"InMemorySaver": "memory", "AsyncSqliteSaver": "sqlite"}.get(name, "postgres")


@contextlib.asynccontextmanager
async def open_memory_store(engine: Engine, store: Store) -> AsyncIterator[Any]:
    """The engine's long-term store next to its checkpoint saver `store`."""
    if engine.name == base.HITL:
        from hitl_async.store import connect_store

        st = connect_store(store.url, **store.options)
        await st.setup()
        try:
            yield st
        finally:
            await st.aclose()
        return
    driver = _driver(store)
    if driver == "memory":
        from langgraph.store.memory import InMemoryStore

        yield InMemoryStore()
    elif driver == "sqlite":
        from langgraph.store.sqlite.aio import AsyncSqliteStore

        # Its own file and connection, made as documented (its saver's connection is busy).
        with tempfile.TemporaryDirectory(prefix="lg-store-") as tmp:
            path = os.path.join(tmp, "store.db")
            async with AsyncSqliteStore.from_conn_string(path) as lg:
                await lg.conn.execute("PRAGMA journal_mode=WAL")  # as hitl-async's driver
                await lg.conn.execute("PRAGMA synchronous=NORMAL")
                await lg.setup()
                yield lg
    elif driver == "postgres":
        from langgraph.store.postgres.aio import AsyncPostgresStore

        lg = AsyncPostgresStore(store.saver.conn)
        await lg.setup()
        yield lg
    else:
        raise RuntimeError(LANGGRAPH_NO_STORE)


def _value(i: int) -> dict[str, Any]:
    return {
        "text": f"the user mentioned preference number {i} during a conversation",
        "n": i,
        "kind": "fact" if (i // USERS) % 2 == 0 else "preference",
        "tags": ["memory", f"t{i % 7}"],
    }


def _ns(i: int) -> tuple[str, ...]:
    return ("memories", f"user-{i % USERS}")


async def _fill(st: Any, count: int) -> None:
    for i in range(count):
        await st.aput(_ns(i), f"m{i}", _value(i))


async def storeput(engine: Engine, store: Store, sizes: Sizes) -> Result:
    async with open_memory_store(engine, store) as st:
        n = sizes.store_ops
        calls = [(_ns(i), f"m{i}", _value(i)) for i in range(n)]  # the store's time, not ours
        start = time.perf_counter()
        for ns, key, value in calls:
            await st.aput(ns, key, value)
        elapsed = time.perf_counter() - start
        got = await st.aget(_ns(n - 1), f"m{n - 1}")
        assert got is not None and got.value == _value(n - 1), got
    return base.Result(elapsed / n * 1e6, "µs/op", {"ops/s": n / elapsed})


async def storeget(engine: Engine, store: Store, sizes: Sizes) -> Result:
    async with open_memory_store(engine, store) as st:
        n = sizes.store_ops
        await _fill(st, n)
        refs = [(_ns(i), f"m{i}") for i in range(n)]
        start = time.perf_counter()
        found = [await st.aget(ns, key) for ns, key in refs]
        elapsed = time.perf_counter() - start
        assert all(f is not None and f.value["n"] == i for i, f in enumerate(found))
    return base.Result(elapsed / n * 1e6, "µs/op", {"ops/s": n / elapsed})


async def storesearch(engine: Engine, store: Store, sizes: Sizes) -> Result:
    async with open_memory_store(engine, store) as st:
        await _fill(st, sizes.store_items)
        n = sizes.store_searches
        per_user = sizes.store_items // USERS
        start = time.perf_counter()
        facts = (per_user + 1) // 2
        for i in range(n):
            found = await st.asearch(_ns(i), filter={"kind": "fact"}, limit=10)
            assert len(found) == min(10, facts), (len(found), facts)
            assert all(item.value["kind"] == "fact" for item in found)
        filtered = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(n):
            found = await st.asearch(_ns(i), limit=10)
            assert len(found) == min(10, per_user)
        plain = time.perf_counter() - start
    return base.Result(filtered / n * 1e6, "µs/op", {"unfiltered µs": plain / n * 1e6})


async def storemix(engine: Engine, store: Store, sizes: Sizes) -> Result:
    async with open_memory_store(engine, store) as st:
        await _fill(st, sizes.store_items)
        tasks, per_task = 50, sizes.store_mix_ops

        async def worker(t: int) -> None:
            for j in range(per_task):
                i = (t * per_task + j) % sizes.store_items
                kind = j % 5
                if kind in (0, 1):
                    got = await st.aget(_ns(i), f"m{i}")
                    assert got is not None
                elif kind in (2, 3):
                    await st.aput(_ns(i), f"m{i}", _value(i))
                else:  # each task searches its own user's memories
                    kind = "fact" if j % 2 else "preference"
                    found = await st.asearch(_ns(t), filter={"kind": kind}, limit=5)
                    assert len(found) == 5 and all(f.value["kind"] == kind for f in found)

        start = time.perf_counter()
        await asyncio.gather(*(worker(t) for t in range(tasks)))
        elapsed = time.perf_counter() - start
    ops = tasks * per_task
    return base.Result(ops / elapsed, "ops/s", {"ms total": elapsed * 1e3})


STORE_WORKLOADS = {
    "storeput": storeput,
    "storeget": storeget,
    "storesearch": storesearch,
    "storemix": storemix,
}
STORE_UNITS: dict[str, tuple[str, bool]] = {
    "storeput": ("µs/op", True),
    "storeget": ("µs/op", True),
    "storesearch": ("µs/op", True),
    "storemix": ("ops/s", False),
}

# Last: `benchmarks.workloads` imports this module's names at its end (an import cycle either
# way round); its own names are only used when a workload runs.
from benchmarks import workloads as base  # noqa: E402
