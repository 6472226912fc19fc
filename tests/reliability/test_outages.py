"""A worker outlives a store outage: one log line when it starts, one when it ends.

The server (PostgreSQL, Redis) becomes unreachable behind a TCP proxy for a while, as in a
restart; the worker keeps polling with backoff, logs the outage once (no traceback per retry),
logs once that the store is back, and then serves the request submitted meanwhile.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
import test_faults
from test_faults import Server
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    StateGraph,
    StoreUnavailableError,
    ThreadBusyError,
    Worker,
    connect,
)

pytestmark = pytest.mark.anyio

server = test_faults.server  # the fixture: a PostgreSQL or Redis server and a proxy to it


class State(TypedDict):
    n: int


def _graph(saver: Any) -> Any:
    def bump(state: State) -> dict[str, int]:
        return {"n": state["n"] + 1}

    builder = StateGraph(State)
    builder.add_node("bump", bump)
    builder.add_edge(START, "bump")
    builder.add_edge("bump", END)
    return builder.compile(checkpointer=saver, name="outage")


async def test_a_worker_logs_an_outage_once_and_serves_after_it(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await server.proxy()
    saver = server.saver(proxy.url(server.url))
    graph = _graph(saver)
    await saver.setup()
    worker = Worker(graph, poll=0.05)
    submitter = server.saver()  # straight to the server: it submits during the outage
    await submitter.setup()
    caplog.set_level(logging.DEBUG, logger="hitl_async")
    caplog.set_level(logging.DEBUG, logger="hitl_async_redis")
    caplog.set_level(logging.DEBUG, logger="hitl_async_postgres")
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            await anyio.sleep(0.3)
            await proxy.stop()  # the server is unreachable for the worker
            await anyio.sleep(2.0)  # ~40 polls
            handle = await _graph(submitter).asubmit({"n": 1}, {"configurable": {"thread_id": "t"}})
            await proxy.start()
            assert await handle.result(timeout=30) == {"n": 2}
            worker.stop()
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    tracebacks = [r for r in records if r.exc_info]
    assert tracebacks == [], [r.getMessage() for r in tracebacks]
    down = [r for r in records if "unavailable" in r.getMessage()]
    back = [r for r in records if "is back after" in r.getMessage()]
    assert 1 <= len(down) <= 2 and len(back) >= 1, [r.getMessage() for r in records]
    assert len(records) <= 6, [r.getMessage() for r in records]


async def test_a_lost_release_does_not_block_the_callers_next_run(server: Server) -> None:
    """The store was unreachable when a run released its lease: the lease stays held, but the
    same saver releases it again (by token) before it next takes the thread, so the caller's
    next call does not fail with ThreadBusyError for up to lease_ttl."""
    proxy = await server.proxy()
    saver = server.saver(proxy.url(server.url))
    await saver.setup()
    lease = await saver.acquire_lease("t", "run-1", 60)
    await proxy.stop()
    with pytest.raises(StoreUnavailableError):
        await saver.release_lease(lease)
    await proxy.start()
    other = server.saver()  # another process: it still sees the lease held
    with pytest.raises(ThreadBusyError):
        await other.acquire_lease("t", "elsewhere", 60)
    again = await saver.acquire_lease("t", "run-2", 60)  # the caller's own next run
    assert again.token == lease.token + 1


async def test_a_lost_release_on_sqlite_does_not_block_the_next_run(tmp_path: Any) -> None:
    import sqlite3

    saver = connect(f"sqlite:///{tmp_path / 'lost.db'}", busy_timeout=0.2)
    try:
        lease = await saver.acquire_lease("t", "run-1", 60)
        locker = sqlite3.connect(tmp_path / "lost.db", isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        with pytest.raises(StoreUnavailableError):
            await saver.release_lease(lease)
        locker.execute("COMMIT")
        locker.close()
        again = await saver.acquire_lease("t", "run-2", 60)
        assert again.token == lease.token + 1
    finally:
        await saver.aclose()
