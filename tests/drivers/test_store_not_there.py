"""A store that is not there is a library error naming it and the fix, on every driver: a
PostgreSQL database that does not exist, a role the server refuses, a Redis database number the
server lacks, a SQLite file in a directory that does not exist. `StoreUnavailableError` with
`transient=False` (waiting will not cure it), never a raw asyncpg / redis / sqlite3 error."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service
from typing_extensions import TypedDict

from hitl_async import END, START, CompiledStateGraph, StateGraph, StoreUnavailableError, connect

pytestmark = pytest.mark.anyio


class State(TypedDict):
    n: int


def _graph(url: str) -> CompiledStateGraph:
    builder = StateGraph(State)
    builder.add_node("bump", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "bump")
    builder.add_edge("bump", END)
    return builder.compile(checkpointer=connect(url))


async def _refused(url: str) -> StoreUnavailableError:
    graph = _graph(url)
    try:
        with pytest.raises(StoreUnavailableError) as info:
            await graph.ainvoke({"n": 1}, {"configurable": {"thread_id": "t"}})
    finally:
        assert graph.checkpointer is not None
        await graph.checkpointer.aclose()
    assert info.value.transient is False and info.value.attempts == 1
    return info.value


async def test_a_missing_postgres_database_names_it_and_how_to_create_it() -> None:
    require_package("hitl_async_postgres", "drivers/postgres")
    require_service("postgres", POSTGRES_URL)
    parts = urlsplit(POSTGRES_URL)
    name = f"nodb_{uuid.uuid4().hex[:8]}"
    error = await _refused(parts._replace(path=f"/{name}", query="").geturl())
    assert f"database {name!r} does not exist" in error.cause
    assert f"createdb -h {parts.hostname}" in error.cause and name in error.store


async def test_a_refused_postgres_login_says_so() -> None:
    require_package("hitl_async_postgres", "drivers/postgres")
    require_service("postgres", POSTGRES_URL)
    parts = urlsplit(POSTGRES_URL)
    host = f"{parts.hostname}:{parts.port or 5432}"
    error = await _refused(f"postgresql://nobody_{uuid.uuid4().hex[:6]}@{host}{parts.path}")
    assert "refused the login" in error.cause


async def test_a_redis_database_number_out_of_range_says_so() -> None:
    require_package("hitl_async_redis", "drivers/redis")
    require_service("redis", REDIS_URL)
    error = await _refused(urlsplit(REDIS_URL)._replace(path="/99").geturl())
    assert "has no database 99" in error.cause


async def test_a_missing_sqlite_directory_is_not_called_read_only(tmp_path: Path) -> None:
    require_package("hitl_async_sqlite", "drivers/sqlite")
    error = await _refused(f"sqlite:///{tmp_path / 'absent' / 'x.db'}")
    assert f"its directory {tmp_path / 'absent'} does not exist" in error.cause
    assert "read-only" not in error.cause
