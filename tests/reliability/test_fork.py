"""Forked children get fresh driver pools, connections and threads, on every driver.

The parent uses a saver from an event loop that keeps running in a thread (as a web server or
the sync facade does), so at the fork its pools, LISTEN/pub-sub connections and (SQLite) its
connection thread are live. Children forked with multiprocessing's `fork` start method then use
the very same saver object through the async API: none hangs, none touches the parent's
sockets, and the parent goes on using its saver afterwards. Eight forked children racing to
resume one interrupt give one winner, one side effect and no forked history.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service
from apps.stores import SharedStore
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    Command,
    ResumeError,
    StateGraph,
    ThreadBusyError,
    interrupt,
)
from hitl_async.testing.records import rec, single_blob

FORK = multiprocessing.get_context("fork")
CHILDREN = 8
TIMEOUT = 60.0


class LoopThread:
    """An event loop running in a thread of its own, like a server's or the sync facade's."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(TIMEOUT)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedStore]:
    """A store of each shared driver (a sync fixture: these tests fork from sync code)."""
    kind = request.param
    if kind == "sqlite":
        require_package("hitl_async_sqlite", "drivers/sqlite")
        store = SharedStore(kind, f"sqlite:///{tmp_path / 'fork.db'}", {})
    elif kind == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
        store = SharedStore(kind, POSTGRES_URL, {"schema": f"t_{uuid.uuid4().hex[:12]}"})
    else:
        require_package("hitl_async_redis", "drivers/redis")
        require_service("redis", REDIS_URL)
        store = SharedStore(kind, REDIS_URL, {"prefix": f"t{uuid.uuid4().hex[:12]}"})
    yield store

    async def cleanup() -> None:
        saver = store.connect()
        await saver.destroy()
        await saver.aclose()

    asyncio.run(cleanup())


@pytest.fixture
def parent_loop() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


def _fork_all(target: Callable[..., None], *args: Any) -> list[int | None]:
    children = [FORK.Process(target=target, args=(i, *args)) for i in range(CHILDREN)]
    for child in children:
        child.start()
    for child in children:
        child.join(TIMEOUT)
    codes = [child.exitcode for child in children]
    for child in children:
        if child.is_alive():
            child.kill()
    return codes


_SAVER: Any = None  # what the children inherit


def _child_uses_the_saver(i: int) -> None:
    async def work() -> None:
        loaded = await _SAVER.load("parent")
        assert loaded is not None and loaded.record.checkpoint_id == "c000001"
        await _SAVER.commit(
            rec(f"child-{i}", "c000001", {"x": "c000001"}),
            single_blob("c000001"),
            expected_head=None,
        )
        lease = await _SAVER.acquire_lease(f"child-{i}", f"child-{i}", 30)
        await _SAVER.release_lease(lease)
        await _SAVER.wait_for_change(f"child-{i}", 0.05)

    asyncio.run(work())
    os._exit(0)


def test_forked_children_get_fresh_connections_and_the_parent_is_unaffected(
    shared_store: SharedStore, parent_loop: LoopThread
) -> None:
    global _SAVER
    saver = _SAVER = shared_store.connect()
    parent_loop.run(
        lambda: saver.commit(
            rec("parent", "c000001", {"x": "c000001"}), single_blob("c000001"), expected_head=None
        )
    )
    parent_loop.run(lambda: saver.wait_for_change("parent", 0.05))  # LISTEN / pub-sub open
    try:
        codes = _fork_all(_child_uses_the_saver)
        assert codes == [0] * CHILDREN, codes  # None: a child hung
        # The parent's pools and connections still work, in its own loop.
        threads = parent_loop.run(saver.list_threads)
        assert sorted(threads) == sorted(["parent", *(f"child-{i}" for i in range(CHILDREN))])
        parent_loop.run(
            lambda: saver.commit(
                rec("parent", "c000002", {"x": "c000002"}, parent="c000001"),
                single_blob("c000002"),
                expected_head="c000001",
            )
        )
    finally:
        parent_loop.run(saver.aclose)


class State(TypedDict):
    answer: str


_GRAPH: Any = None
_EFFECTS: Path | None = None


def _build(saver: Any, effects: Path) -> Any:
    def ask(state: State) -> dict[str, str]:
        answer = interrupt("ok?")
        with open(effects, "a") as f:  # the side effect: one line per execution
            f.write(f"{answer}\n")
        return {"answer": answer}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver, name="forked")


def _child_resumes(i: int) -> None:
    cfg = {"configurable": {"thread_id": "race"}}
    try:
        asyncio.run(_GRAPH.ainvoke(Command(resume=f"child-{i}"), cfg))
    except (ThreadBusyError, ResumeError):
        os._exit(3)
    os._exit(0)


def test_eight_forked_children_racing_one_resume(
    shared_store: SharedStore, parent_loop: LoopThread, tmp_path: Path
) -> None:
    global _GRAPH
    saver = shared_store.connect()
    effects = tmp_path / "effects.txt"
    _GRAPH = _build(saver, effects)
    cfg = {"configurable": {"thread_id": "race"}}
    parent_loop.run(lambda: _GRAPH.ainvoke({"answer": ""}, cfg))  # paused, pools live
    try:
        codes = _fork_all(_child_resumes)
        assert None not in codes, codes  # nobody hung
        assert sorted(codes) == [0] + [3] * (CHILDREN - 1), codes
        winners = effects.read_text().splitlines()
        assert len(winners) == 1  # one side effect
        state = parent_loop.run(lambda: _GRAPH.aget_state(cfg))
        assert state.values == {"answer": winners[0]} and not state.next
        history = parent_loop.run(lambda: saver.history("race"))
        ids = [c.record.checkpoint_id for c in history]
        parents = [c.record.parent_id for c in history]
        assert parents[:-1] == ids[1:]  # one linear chain: no forked history
    finally:
        parent_loop.run(saver.aclose)
