"""A process forked while the SQLite driver's threads are writing gives children that work.

SQLite's process-wide mutexes are copied into a child in whatever state they were in, so a
fork that lands while another thread runs a statement could leave the child's first
`sqlite3.connect` waiting for ever (CI once saw one child of eight hang this way, forked while
the parent's background run wrote checkpoints). Here a parent thread keeps the saver's worker
and the store's connections writing without pause while the main thread forks child after
child; every child must open the database, read it and leave promptly.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from apps.forking import dumps_stacks, kill_dumping
from apps.services import require_package

from hitl_async import START, StateGraph

FORK = multiprocessing.get_context("fork")
FORKS = 60  # without the fork gate, with other processes on both cores, runs had a child hang
CHILD_TIMEOUT = 20.0
CONCURRENT = 16


def _child(path: str) -> None:
    dumps_stacks()
    conn = sqlite3.connect(path, timeout=10)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    conn.close()
    os._exit(0)


def _fork_one(path: str) -> int | None:
    child = FORK.Process(target=_child, args=(path,))
    child.start()
    child.join(CHILD_TIMEOUT)
    if child.is_alive():
        kill_dumping(child)
        return None
    return child.exitcode


def _busy_writer(saver: object, store: object, stop: threading.Event, wrote: list[int]) -> None:
    """Runs in a parent thread: graph runs checkpointing to SQLite, and store puts, until `stop`."""

    def node(state: dict[str, int]) -> dict[str, int]:
        return {"n": state["n"] + 1}

    builder = StateGraph(dict)  # type: ignore[type-var]
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    graph = builder.compile(checkpointer=saver, store=store)  # type: ignore[arg-type]

    async def one() -> None:
        await graph.ainvoke({"n": 0}, {"configurable": {"thread_id": uuid.uuid4().hex}})
        await store.aput(("fork",), uuid.uuid4().hex, {"v": 1})  # type: ignore[attr-defined]

    async def main() -> None:
        while not stop.is_set():  # runs at once: the driver's threads are seldom idle
            await asyncio.gather(*(one() for _ in range(CONCURRENT)))
            wrote.append(1)

    asyncio.run(main())


def test_children_forked_while_the_driver_writes_open_the_database(tmp_path: Path) -> None:
    require_package("hitl_async_sqlite", "drivers/sqlite")
    from hitl_async_sqlite import SqliteSaver
    from hitl_async_sqlite.store import SqliteStore

    path = str(tmp_path / "busy.db")
    saver = SqliteSaver(path)
    store = SqliteStore(str(tmp_path / "store.db"))
    stop = threading.Event()
    wrote: list[int] = []
    writer = threading.Thread(target=_busy_writer, args=(saver, store, stop, wrote), daemon=True)
    writer.start()
    try:
        deadline = time.monotonic() + 30
        while not wrote and time.monotonic() < deadline:
            time.sleep(0.01)
        assert wrote, "the parent's writer never got going"
        codes = [_fork_one(path) for _ in range(FORKS)]
    finally:
        stop.set()
        writer.join(30)
    assert codes == [0] * FORKS, f"children that hung (None) or failed: {codes}"
    assert len(wrote) > 1  # the parent kept writing across the forks
