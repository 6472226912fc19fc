"""A store that disappears under running graphs is reported as lost, on every driver.

Deleting the SQLite file (with its -wal and -shm), dropping the PostgreSQL schema, emptying the
Redis store (its keys deleted; a private `redis-server` restarted without persistence): every
run in flight ends with `StoreLostError` naming what happened, never with success (its writes
went nowhere) and never with "another run took the thread over" (`LeaseLostError`). A SQLite
file swapped for another hitl-async store is reported as replaced.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from apps.services import POSTGRES_URL, require_package, unavailable
from apps.stores import SharedStore
from typing_extensions import TypedDict

from hitl_async import END, START, LeaseLostError, StateGraph, StoreLostError, connect

pytestmark = pytest.mark.anyio

RUNS = 16


class State(TypedDict):
    n: int


def _graph(saver: Any) -> Any:
    async def step(state: State) -> dict[str, int]:
        await anyio.sleep(0.15)
        return {"n": state["n"] + 1}

    builder = StateGraph(State)
    builder.add_node("a", step)
    builder.add_node("b", step)
    builder.add_node("c", step)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=saver, lease_ttl=5)


async def _lose(store: SharedStore) -> str:
    """Make the store vanish behind the savers' backs; what the error must say."""
    if store.kind == "sqlite":
        path = store.url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return "deleted"
    if store.kind == "postgres":
        import asyncpg

        conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await conn.execute(f'DROP SCHEMA "{store.options["schema"]}" CASCADE')
        finally:
            await conn.close()
        return "dropped"
    other = store.connect()  # another saver of the same prefix: it deletes every key
    await other.destroy()
    await other.aclose()
    return "emptied"


async def _run_all(graph: Any, during: Any) -> list[BaseException | dict[str, Any]]:
    outcomes: list[BaseException | dict[str, Any]] = []

    async def one(i: int) -> None:
        try:
            outcomes.append(await graph.ainvoke({"n": 0}, {"configurable": {"thread_id": f"t{i}"}}))
        except Exception as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        for i in range(RUNS):
            tg.start_soon(one, i)
        await anyio.sleep(0.2)  # every run is past its first step
        await during()
    return outcomes


async def test_a_store_lost_mid_run_fails_every_run_with_store_lost(
    shared_store: SharedStore, record_property: Any
) -> None:
    saver = shared_store.connect()
    graph = _graph(saver)
    said: list[str] = []

    async def lose() -> None:
        said.append(await _lose(shared_store))

    try:
        with anyio.fail_after(60):
            outcomes = await _run_all(graph, lose)
    finally:
        await saver.aclose()
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(outcomes) == RUNS
    assert not any(isinstance(o, dict) for o in outcomes), "a run reported success"
    assert not any(isinstance(e, LeaseLostError) for e in errors)
    for error in errors:
        assert isinstance(error, StoreLostError), repr(error)
        assert said[0] in str(error) and "lost" in str(error)
    record_property("runs", RUNS)
    record_property("store_lost_errors", len(errors))
    record_property("reported_success", 0)


@pytest.fixture
def record_property(request: pytest.FixtureRequest) -> Any:
    def record(name: str, value: object) -> None:
        request.node.user_properties.append((name, value))

    return record


async def test_a_swapped_sqlite_file_is_reported_as_replaced(tmp_path: Path) -> None:
    require_package("hitl_async_sqlite", "drivers/sqlite")
    path, other = tmp_path / "live.db", tmp_path / "other.db"
    for p in (path, other):
        saver = connect(f"sqlite:///{p}")
        await saver.setup()
        await saver.aclose()
    saver = connect(f"sqlite:///{path}")
    graph = _graph(saver)
    try:
        await graph.ainvoke({"n": 0}, {"configurable": {"thread_id": "kept"}})
        os.replace(other, path)  # another hitl-async store takes the file's place
        with pytest.raises(StoreLostError, match="replaced"):
            await graph.ainvoke({"n": 0}, {"configurable": {"thread_id": "t"}})
        with pytest.raises(StoreLostError):
            await graph.aget_state({"configurable": {"thread_id": "kept"}})
    finally:
        await saver.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis_server(port: int, folder: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("the private redis-server did not start")


async def test_a_redis_restart_without_persistence_is_store_lost_not_a_takeover(
    tmp_path: Path,
) -> None:
    require_package("hitl_async_redis", "drivers/redis")
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed (a private server is restarted)")
    port = _free_port()
    server = _redis_server(port, tmp_path)
    saver = connect(f"redis://127.0.0.1:{port}/0", prefix=f"t{uuid.uuid4().hex[:8]}")
    graph = _graph(saver)

    async def restart() -> None:
        nonlocal server
        server.kill()
        server.wait()
        server = await anyio.to_thread.run_sync(_redis_server, port, tmp_path)

    try:
        with anyio.fail_after(60):
            outcomes = await _run_all(graph, restart)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(errors) == RUNS, outcomes
        for error in errors:
            assert isinstance(error, StoreLostError), repr(error)
            assert "emptied" in str(error)
    finally:
        await saver.aclose()
        server.kill()
        server.wait()
