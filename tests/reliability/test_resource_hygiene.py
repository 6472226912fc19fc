"""Savers dropped without `aclose()` release their connections and say where they were made.

A PostgreSQL saver per request used to keep its pool (4 connections and a pending task) until
the process exited, so ~25 requests exhausted `max_connections=100`; Redis kept its pool and
its pub/sub connection. Now a collected saver closes them, with a `ResourceWarning` naming the
line that created it (and no "Task was destroyed but it is pending!").
"""

from __future__ import annotations

import asyncio
import gc
import uuid
import warnings
from typing import Any

import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service

from hitl_async import connect

pytestmark = pytest.mark.anyio

SAVERS = 30


async def _postgres_backends(app: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app
        )
        return count
    finally:
        await conn.close()


async def _redis_clients(name: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        return sum(1 for c in await client.client_list() if c.get("name") == name)
    finally:
        await client.aclose()


async def _use_and_drop(url: str, options: dict[str, Any]) -> None:
    saver = connect(url, **options)
    await saver.setup()
    await saver.list_threads()
    await saver.wait_for_change("nobody", 0.01)  # opens the notification connection too
    if "schema" in options:
        await saver.destroy()
    # dropped here without aclose()


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_savers_dropped_without_aclose_release_their_connections(kind: str) -> None:
    tag = f"hyg{uuid.uuid4().hex[:8]}"
    if kind == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
        url = f"{POSTGRES_URL}?application_name={tag}"
        count = _postgres_backends
    else:
        require_package("hitl_async_redis", "drivers/redis")
        require_service("redis", REDIS_URL)
        url = f"{REDIS_URL}?client_name={tag}"
        count = _redis_clients
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        peak = 0
        for i in range(SAVERS):
            options = {"schema": f"t_{tag}_{i}"} if kind == "postgres" else {"prefix": f"{tag}{i}"}
            await _use_and_drop(url, options)
            gc.collect()
            await asyncio.sleep(0.05)  # the pools close in their loop
            peak = max(peak, await count(tag))
        for _ in range(50):
            if await count(tag) == 0:
                break
            await asyncio.sleep(0.1)
    assert await count(tag) == 0
    assert peak <= 8  # never more than a saver or two's worth at once
    # One warning per saver, naming where it was made (here); savers other tests dropped may be
    # collected meanwhile and warn too, naming their own lines.
    mine = [
        w for w in caught if "without aclose()" in str(w.message) and __file__ in str(w.message)
    ]
    assert len(mine) == SAVERS
    assert all(w.category is ResourceWarning for w in mine)


async def test_a_dropped_sqlite_saver_stops_its_thread(tmp_path: Any) -> None:
    require_package("hitl_async_sqlite", "drivers/sqlite")
    import threading

    before = {t.name for t in threading.enumerate()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        saver = connect(f"sqlite:///{tmp_path / 'dropped.db'}")
        await saver.list_threads()
        del saver
        gc.collect()
        for _ in range(50):
            extra = {t.name for t in threading.enumerate()} - before
            if not any("dropped.db" in name for name in extra):
                break
            await asyncio.sleep(0.05)
    assert not any("dropped.db" in t.name for t in threading.enumerate())
    assert any(__file__ in str(w.message) for w in caught if w.category is ResourceWarning)
