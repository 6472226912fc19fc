"""The savers under LangGraph's names and constructors (`hitl_async.checkpoint.sqlite`,
`.postgres`, `.redis` and their `.aio`): a LangGraph saver line ports by renaming its import.

Each is driven as LangGraph's docs show it (sync `with ... as checkpointer` + `setup()`, or
`async with`), pauses a thread, and a second saver made the same way resumes it.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_service
from typing_extensions import TypedDict

from hitl_async import Command, connect, interrupt
from hitl_async.checkpoint.base import BaseSaver
from hitl_async.graph import END, START, StateGraph


class State(TypedDict, total=False):
    amount: float
    decision: str


def builder() -> StateGraph:
    def approve(state: State) -> dict[str, Any]:
        return {"decision": interrupt(f"approve {state['amount']}?")}

    b = StateGraph(State)
    b.add_node("approve", approve)
    b.add_edge(START, "approve")
    b.add_edge("approve", END)
    return b


def pause_then_resume(first: Any, second: Any) -> None:
    """Pause a thread on `first`, resume it on `second` (two savers on one store)."""
    config = {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:8]}"}}
    assert "__interrupt__" in builder().compile(checkpointer=first).invoke({"amount": 5}, config)
    graph = builder().compile(checkpointer=second)
    assert graph.invoke(Command(resume="yes"), config) == {"amount": 5, "decision": "yes"}


async def apause_then_resume(first: Any, second: Any) -> None:
    config = {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:8]}"}}
    out = await builder().compile(checkpointer=first).ainvoke({"amount": 5}, config)
    assert "__interrupt__" in out
    graph = builder().compile(checkpointer=second)
    assert await graph.ainvoke(Command(resume="no"), config) == {"amount": 5, "decision": "no"}


# -- SQLite ---------------------------------------------------------------------------------------


def test_sqlite_saver_from_conn_string_and_from_a_connection(tmp_path: Path) -> None:
    from hitl_async.checkpoint.sqlite import SqliteSaver

    path = str(tmp_path / "checkpoints.sqlite")
    with SqliteSaver.from_conn_string(path) as checkpointer:
        assert isinstance(checkpointer, BaseSaver)
        assert checkpointer.setup() is not None  # blocking, as LangGraph's
        pause_then_resume(checkpointer, SqliteSaver(sqlite3.connect(path)))
    conn = sqlite3.connect(path, check_same_thread=False)
    rows = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    assert rows > 0  # the file of the connection holds the checkpoints
    conn.close()


def test_sqlite_saver_on_an_in_memory_connection() -> None:
    from hitl_async.checkpoint.sqlite import SqliteSaver

    saver = SqliteSaver(sqlite3.connect(":memory:", check_same_thread=False))
    assert saver.path == ":memory:"
    pause_then_resume(saver, saver)


def test_serde_argument_is_refused_with_the_hitl_async_way(tmp_path: Path) -> None:
    from hitl_async.checkpoint.sqlite import SqliteSaver

    with pytest.raises(TypeError, match=r"compile\(checkpointer=..., serializer=...\)"):
        SqliteSaver(str(tmp_path / "x.db"), serde=object())


@pytest.mark.anyio
async def test_async_sqlite_saver(tmp_path: Path) -> None:
    import aiosqlite

    from hitl_async.checkpoint.sqlite.aio import AsyncSqliteSaver

    path = str(tmp_path / "checkpoints.sqlite")
    async with AsyncSqliteSaver.from_conn_string(path) as checkpointer:
        await checkpointer.setup()
        async with aiosqlite.connect(path) as conn:
            other = AsyncSqliteSaver(conn)
            assert other.path == path
            try:
                await apause_then_resume(checkpointer, other)
            finally:
                await other.aclose()


# -- PostgreSQL -----------------------------------------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[str]:
    require_service("postgres", POSTGRES_URL)
    schema = f"lg_{uuid.uuid4().hex[:12]}"
    yield schema

    async def drop() -> None:
        saver = connect(POSTGRES_URL, schema=schema)
        try:
            await saver.destroy()
        finally:
            await saver.aclose()

    anyio.run(drop)


def test_postgres_saver_from_conn_string_and_from_a_psycopg_connection(pg_schema: str) -> None:
    import psycopg

    from hitl_async.checkpoint.postgres import PostgresSaver

    url = f"{POSTGRES_URL}?schema={pg_schema}"
    with PostgresSaver.from_conn_string(url) as checkpointer:
        checkpointer.setup()
        with psycopg.connect(POSTGRES_URL) as conn:
            second = PostgresSaver(conn, schema=pg_schema)
            try:
                pause_then_resume(checkpointer, second)
            finally:
                from hitl_async.checkpoint.langgraph_names import close_blocking

                close_blocking(second)


@pytest.mark.anyio
async def test_async_postgres_saver(pg_schema: str) -> None:
    from hitl_async.checkpoint.postgres.aio import AsyncPostgresSaver

    async with AsyncPostgresSaver.from_conn_string(POSTGRES_URL, schema=pg_schema) as first:
        await first.setup()
        async with AsyncPostgresSaver.from_conn_string(POSTGRES_URL, schema=pg_schema) as second:
            await apause_then_resume(first, second)


# -- Redis ----------------------------------------------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    require_service("redis", REDIS_URL)
    prefix = f"lg{uuid.uuid4().hex[:12]}"
    yield prefix

    async def drop() -> None:
        saver = connect(REDIS_URL, prefix=prefix)
        try:
            await saver.destroy()
        finally:
            await saver.aclose()

    anyio.run(drop)


def test_redis_saver_from_conn_string_and_from_a_client(redis_prefix: str) -> None:
    import redis

    from hitl_async.checkpoint.redis import RedisSaver

    with RedisSaver.from_conn_string(redis_url=REDIS_URL, prefix=redis_prefix) as checkpointer:
        checkpointer.setup()
        client = redis.Redis.from_url(REDIS_URL)
        with RedisSaver.from_conn_string(redis_client=client, prefix=redis_prefix) as second:
            pause_then_resume(checkpointer, second)
        client.close()


@pytest.mark.anyio
async def test_async_redis_saver(redis_prefix: str) -> None:
    from hitl_async.checkpoint.redis.aio import AsyncRedisSaver

    async with AsyncRedisSaver.from_conn_string(redis_url=REDIS_URL, prefix=redis_prefix) as a:
        await a.asetup()
        b = AsyncRedisSaver(redis_url=REDIS_URL, prefix=redis_prefix, ttl={"default_ttl": 60})
        try:
            await apause_then_resume(a, b)
        finally:
            await b.aclose()
