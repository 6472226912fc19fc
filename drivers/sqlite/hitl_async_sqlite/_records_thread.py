"""The record store's connection thread: one `sqlite3` connection, one queue of jobs, group
commit. A write job taken from the queue takes every write queued behind it (up to `max_batch`)
into one `BEGIN IMMEDIATE` transaction, each in a savepoint of its own, so N concurrent writes
cost one commit and a failing one undoes only itself. Reads run one by one between batches.
Each outcome goes straight to an asyncio future of the awaiting loop (`call_soon_threadsafe`),
without a `concurrent.futures.Future` in between (its lock and chained callbacks cost more than
the query on this path).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

from hitl_async_sqlite._fork_gate import hold_during_fork

__all__ = ["ConnectionThread"]

T = TypeVar("T")


class _Reply:
    """Where a job's outcome goes: a future of the event loop that awaits it."""

    __slots__ = ("future", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[Any] = self.loop.create_future()

    def wanted(self) -> bool:
        """Whether the caller still waits (read from the connection thread: at worst a job
        whose caller just left still runs, its outcome dropped)."""
        return not self.future.cancelled()

    def send(self, ok: bool, value: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self.loop.call_soon_threadsafe(_resolve, self.future, ok, value)


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


_Job = tuple[bool, Callable[[sqlite3.Connection], Any], _Reply]


class ConnectionThread:
    """Runs `fn(conn)` jobs on a thread of its own; `await run(fn, write=...)`."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], max_batch: int = 128) -> None:
        self._connect = connect
        self._queue: SimpleQueue[_Job | None] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._using = threading.Lock()  # held while the thread runs statements
        hold_during_fork(self._using)
        self.max_batch = max_batch

    async def run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        self._start()
        reply = _Reply()
        self._queue.put((write, fn, reply))
        result: T = await reply.future
        return result

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._main, name="hitl-server-records", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Finish the queued jobs, close the connection, end the thread (blocking)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _main(self) -> None:
        conn: sqlite3.Connection | None = None
        pending: _Job | None = None
        while True:
            job = pending if pending is not None else self._queue.get()
            pending = None
            if job is None:
                break
            if conn is None:
                try:
                    with self._using:
                        conn = self._connect()
                except BaseException as exc:
                    job[2].send(False, exc)
                    continue
            write, fn, done = job
            if not write:
                with self._using:
                    _settle(done, fn, conn)
                continue
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except Empty:
                    break
                if nxt is None or not nxt[0]:
                    pending = nxt
                    if nxt is None:
                        self._queue.put(None)
                        pending = None
                    break
                batch.append(nxt)
            with self._using:
                _write_batch(conn, batch)
        if conn is not None:
            with self._using:
                conn.close()


def _settle(done: _Reply, fn: Callable[[sqlite3.Connection], Any], conn: Any) -> None:
    if not done.wanted():
        return
    try:
        value = fn(conn)
    except BaseException as exc:
        done.send(False, exc)
    else:
        done.send(True, value)


def _write_batch(conn: sqlite3.Connection, batch: list[_Job]) -> None:
    outcomes: list[tuple[_Reply, bool, Any]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
    except BaseException as exc:
        for _, _, done in batch:
            done.send(False, exc)
        return
    for _, fn, done in batch:
        conn.execute("SAVEPOINT job")
        try:
            value = fn(conn)
        except BaseException as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            outcomes.append((done, False, exc))
            continue
        conn.execute("RELEASE job")
        outcomes.append((done, True, value))
    try:
        conn.execute("COMMIT")
    except BaseException as exc:
        conn.execute("ROLLBACK")
        outcomes = [(done, False, exc) for done, _, _ in outcomes]
    for done, ok, value in outcomes:
        done.send(ok, value)
