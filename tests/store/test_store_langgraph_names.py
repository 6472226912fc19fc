"""The stores under LangGraph's names and constructors (`hitl_async.store.sqlite`,
`.postgres`, `.redis` and their async forms): a LangGraph store line ports by renaming its
import. Each is driven as LangGraph's docs show it (sync `with ... as store` + `setup()`, or
`async with`), and a second store made the same way reads what the first wrote."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_service

from hitl_async.config import get_store
from hitl_async.graph import START, MessagesState, StateGraph


def _remembering_graph(store: Any) -> Any:
    """A graph whose node keeps a note in the store, as an agent with memory does."""

    def remember(state: MessagesState) -> dict[str, Any]:
        get_store().put(("users", "u1"), "note", {"text": "likes tea"})
        return {}

    g = StateGraph(MessagesState)
    g.add_node("remember", remember)
    g.add_edge(START, "remember")
    return g.compile(store=store)


def _use(first: Any, second: Any) -> None:
    first.setup()
    first.put(("docs", "a"), "k1", {"n": 1})
    _remembering_graph(first).invoke({"messages": [("user", "hi")]})
    assert second.get(("docs", "a"), "k1").value == {"n": 1}
    assert [i.key for i in second.search(("users",))] == ["note"]
    assert ("docs", "a") in second.list_namespaces()


async def _ause(first: Any, second: Any) -> None:
    await first.setup()
    await first.aput(("docs", "a"), "k1", {"n": 1})
    item = await second.aget(("docs", "a"), "k1")
    assert item is not None and item.value == {"n": 1}
    assert [i.key for i in await second.asearch(("docs",), filter={"n": 1})] == ["k1"]


def test_sqlite_store_from_a_path_and_a_connection(tmp_path: Path) -> None:
    from hitl_async.store.sqlite import SqliteStore

    path = str(tmp_path / "memory.sqlite")
    with SqliteStore.from_conn_string(path) as first:
        conn = sqlite3.connect(path, check_same_thread=False)
        second = SqliteStore(conn)
        try:
            _use(first, second)
        finally:
            second.sweep_ttl()
            conn.close()


@pytest.mark.anyio
async def test_async_sqlite_store(tmp_path: Path) -> None:
    from hitl_async.store.sqlite.aio import AsyncSqliteStore

    path = str(tmp_path / "memory.sqlite")
    async with (
        AsyncSqliteStore.from_conn_string(path) as first,
        AsyncSqliteStore.from_conn_string(path) as second,
    ):
        await _ause(first, second)


def test_postgres_store_sync() -> None:
    require_service("postgres", POSTGRES_URL)
    from hitl_async.store.postgres import PostgresStore

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with (
        PostgresStore.from_conn_string(
            POSTGRES_URL, pool_config={"min_size": 1, "max_size": 2}, schema=schema
        ) as first,
        PostgresStore.from_conn_string(POSTGRES_URL, schema=schema) as second,
    ):
        try:
            _use(first, second)
        finally:
            from hitl_async import _sync

            _sync.run(first.destroy)


@pytest.mark.anyio
async def test_async_postgres_store() -> None:
    require_service("postgres", POSTGRES_URL)
    from hitl_async.store.postgres.aio import AsyncPostgresStore

    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with (
        AsyncPostgresStore.from_conn_string(POSTGRES_URL, schema=schema) as first,
        AsyncPostgresStore.from_conn_string(POSTGRES_URL, schema=schema) as second,
    ):
        try:
            await _ause(first, second)
        finally:
            await first.destroy()


def test_redis_store_from_a_url_and_a_client() -> None:
    require_service("redis", REDIS_URL)
    from redis import Redis

    from hitl_async.store.redis import RedisStore

    prefix = f"t{uuid.uuid4().hex[:12]}"
    client = Redis.from_url(REDIS_URL)
    with (
        RedisStore.from_conn_string(REDIS_URL, prefix=prefix) as first,
        RedisStore.from_conn_string(REDIS_URL, prefix=prefix) as second,
    ):
        try:
            _use(first, second)
            by_client = RedisStore(client, prefix=prefix)
            assert by_client.get(("docs", "a"), "k1").value == {"n": 1}
        finally:
            from hitl_async import _sync

            _sync.run(first.destroy)
            client.close()


@pytest.mark.anyio
async def test_async_redis_store() -> None:
    require_service("redis", REDIS_URL)
    from hitl_async.store.redis import AsyncRedisStore

    prefix = f"t{uuid.uuid4().hex[:12]}"
    async with (
        AsyncRedisStore.from_conn_string(REDIS_URL, prefix=prefix) as first,
        AsyncRedisStore.from_conn_string(REDIS_URL, prefix=prefix) as second,
    ):
        try:
            await _ause(first, second)
        finally:
            await first.destroy()


@pytest.mark.parametrize(
    "module, name",
    [
        ("hitl_async.store.sqlite", "SqliteStore"),
        ("hitl_async.store.sqlite.aio", "AsyncSqliteStore"),
        ("hitl_async.store.postgres", "PostgresStore"),
        ("hitl_async.store.postgres.aio", "AsyncPostgresStore"),
    ],
)
def test_a_deserializer_is_refused_with_the_reason(module: str, name: str, tmp_path: Path) -> None:
    import importlib

    cls = getattr(importlib.import_module(module), name)
    conn = str(tmp_path / "x.sqlite") if "sqlite" in module else POSTGRES_URL
    with pytest.raises(TypeError, match=r"deserializer=.*never runs code"):
        cls(conn, deserializer=lambda b: {})
