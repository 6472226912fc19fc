"""hitl-async shares a PostgreSQL database with LangGraph and other applications.

Its tables live in a schema of their own (`hitl` by default), so a database that already holds
LangGraph's checkpoint tables (made here by LangGraph 1.2's own `PostgresSaver.setup()`, in a
private database the test creates and drops) keeps them untouched while hitl-async runs beside
them; asking for `schema="public"` there is a clear error naming the clash, not asyncpg's
`DuplicateTableError`. A store an earlier version kept in `public` moves to `hitl` by itself on
first use, its threads intact.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from apps.services import POSTGRES_URL, require_package, require_service, unavailable
from typing_extensions import TypedDict

from hitl_async import END, START, Command, InvalidConfigError, StateGraph, connect, interrupt

pytestmark = pytest.mark.anyio

LANGGRAPH_PYTHON = Path("/work/lgvenv/bin/python")


def _url_of(database: str) -> str:
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A private database, dropped afterwards: the URL to it."""
    require_package("hitl_async_postgres", "drivers/postgres")
    require_service("postgres", POSTGRES_URL)
    import asyncpg

    name = f"hitl_coexist_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _url_of(name)
    finally:
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _tables(url: str, schema: str) -> dict[str, int]:
    """The tables of `schema` with their row counts."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        names = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema
            )
        ]
        return {n: await conn.fetchval(f'SELECT count(*) FROM "{schema}"."{n}"') for n in names}
    finally:
        await conn.close()


class State(TypedDict):
    answer: str


def _graph(saver: object) -> object:
    def ask(state: State) -> dict[str, str]:
        return {"answer": interrupt("ok?")}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)  # type: ignore[arg-type]


_LANGGRAPH_SETUP = """
import sys
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.graph import StateGraph, START, END
from typing_extensions import TypedDict
class S(TypedDict):
    n: int
with PostgresSaver.from_conn_string(sys.argv[1]) as saver:
    saver.setup()
    b = StateGraph(S)
    b.add_node("inc", lambda s: {"n": s["n"] + 1})
    b.add_edge(START, "inc")
    b.add_edge("inc", END)
    b.compile(checkpointer=saver).invoke({"n": 1}, {"configurable": {"thread_id": "lg"}})
"""


async def test_runs_beside_langgraph_tables_without_touching_them(database: str) -> None:
    if not LANGGRAPH_PYTHON.exists():
        unavailable(f"LangGraph's environment {LANGGRAPH_PYTHON} is missing")
    subprocess.run(
        [str(LANGGRAPH_PYTHON), "-c", _LANGGRAPH_SETUP, database], check=True, timeout=120
    )
    langgraph_before = await _tables(database, "public")
    assert {"checkpoints", "checkpoint_blobs", "checkpoint_writes"} <= set(langgraph_before)
    assert langgraph_before["checkpoints"] >= 1

    saver = connect(database)  # the default schema
    try:
        graph = _graph(saver)
        cfg = {"configurable": {"thread_id": "t"}}
        await graph.ainvoke({"answer": ""}, cfg)  # type: ignore[attr-defined]
        done = await graph.ainvoke(Command(resume="yes"), cfg)  # type: ignore[attr-defined]
        assert done == {"answer": "yes"}
    finally:
        await saver.aclose()
    assert await _tables(database, "public") == langgraph_before  # untouched
    assert "checkpoints" in await _tables(database, "hitl")

    clash = connect(database, schema="public")
    try:
        with pytest.raises(InvalidConfigError) as info:
            await clash.setup()
        message = str(info.value)
        assert "'public'" in message and "LangGraph" in message and "'hitl'" in message
    finally:
        await clash.aclose()
    assert await _tables(database, "public") == langgraph_before


async def test_a_store_in_public_moves_to_the_default_schema(database: str) -> None:
    old = connect(database, schema="public")  # where versions before 0.2 put it
    graph = _graph(old)
    cfg = {"configurable": {"thread_id": "kept"}}
    try:
        await graph.ainvoke({"answer": ""}, cfg)  # type: ignore[attr-defined]
    finally:
        await old.aclose()
    assert "hitl_migrations" in await _tables(database, "public")

    new = connect(database)
    try:
        graph = _graph(new)
        state = await graph.aget_state(cfg)  # type: ignore[attr-defined]
        assert [i.value for i in state.interrupts] == ["ok?"]
        assert await graph.ainvoke(Command(resume="yes"), cfg) == {"answer": "yes"}  # type: ignore[attr-defined]
    finally:
        await new.aclose()
    assert not {"threads", "checkpoints", "hitl_migrations"} & set(
        await _tables(database, "public")
    )
    import asyncpg

    conn = await asyncpg.connect(database)
    try:
        leftovers = await conn.fetchval(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND p.proname LIKE 'hitl\\_%'"
        )
    finally:
        await conn.close()
    assert leftovers == 0
