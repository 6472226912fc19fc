"""A run whose releasing commit fails for good does not hold its thread for `lease_ttl`.

The store becomes unreachable while the last node runs (PostgreSQL and Redis behind a TCP proxy
that stops; SQLite's write lock held by another process), so the commit that ends the run and
releases its lease fails after its retries (`StoreUnavailableError`). The engine then releases
the lease on its own; that fails too while the store is down, and the driver releases it again
first thing when the same saver next takes the thread. Once the store is back, the caller's next
run on the thread starts at once, although `lease_ttl` is 60 s and another process still sees
the lease held: with durability "async" (the release rides on the final batch commit) and
"sync" (a separate release after the last commit).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import test_faults
from test_faults import Locker, Server, sqlite_saver
from typing_extensions import TypedDict

from hitl_async import END, START, StateGraph, StoreUnavailableError, ThreadBusyError

pytestmark = pytest.mark.anyio

server = test_faults.server  # the fixture: a PostgreSQL or Redis server and a proxy to it

LEASE_TTL = 60.0  # far longer than the test: a lease left held would show as ThreadBusyError
DURABILITY = pytest.mark.parametrize("durability", ["async", "sync"])


class State(TypedDict):
    n: int


def _graph(saver: Any, fault: Callable[[], Awaitable[None]]) -> Any:
    armed = [True]

    async def first(state: State) -> dict[str, int]:
        return {"n": state["n"] + 1}

    async def last(state: State) -> dict[str, int]:
        if armed[0]:
            armed[0] = False
            await fault()  # the store goes away before the run's last commit
        return {"n": state["n"] + 1}

    builder = StateGraph(State)
    builder.add_node("first", first)
    builder.add_node("last", last)
    builder.add_edge(START, "first")
    builder.add_edge("first", "last")
    builder.add_edge("last", END)
    return builder.compile(checkpointer=saver, lease_ttl=LEASE_TTL, name="release")


async def _check(
    graph: Any, durability: str, back: Callable[[], Awaitable[None]], other: Any
) -> None:
    cfg = {"configurable": {"thread_id": "t"}}
    with anyio.fail_after(30):
        with pytest.raises(StoreUnavailableError):
            await graph.ainvoke({"n": 0}, cfg, durability=durability)
        await back()
        with pytest.raises(ThreadBusyError):  # another process: the release did not land
            await other.acquire_lease("t", "elsewhere", 5)
        # the caller's next run starts at once (60 s before the lease would lapse)
        assert await graph.ainvoke({"n": 10}, cfg, durability=durability) == {"n": 12}


@DURABILITY
async def test_a_lost_release_on_a_server(server: Server, durability: str) -> None:
    proxy = await server.proxy()
    saver = server.saver(proxy.url(server.url))
    await saver.setup()
    await _check(_graph(saver, proxy.stop), durability, proxy.start, server.saver())


@DURABILITY
async def test_a_lost_release_on_sqlite(tmp_path: Path, durability: str) -> None:
    path = tmp_path / "release.db"
    saver = sqlite_saver(path, busy_timeout=0.1)
    await saver.setup()
    lockers: list[Locker] = []

    async def lock() -> None:
        lockers.append(Locker(path))
        await lockers[-1].locked()

    async def unlock() -> None:
        await lockers[-1].release()

    other = sqlite_saver(path)
    try:
        await _check(_graph(saver, lock), durability, unlock, other)
    finally:
        for locker in lockers:
            await locker.release()
        await other.aclose()
        await saver.aclose()
