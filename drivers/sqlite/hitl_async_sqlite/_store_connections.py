"""The SQLite store's connections: the store's own (used by one worker thread, or by sync
calls on theirs, one at a time under a lock), and the two that never wait, through which async
calls read and write on the caller's thread while that is short and nothing holds a lock
(`_read_inline`, `_write_inline`)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from hitl_async_sqlite._fork_gate import hold_during_fork
from hitl_async_sqlite._store_sql import SCHEMA

__all__ = ["StoreConnections"]

T = TypeVar("T")

_INLINE_STEPS = 1000  # SQLite virtual-machine steps between budget checks of an inline read
_INLINE_BUDGET = 12  # checks before it is interrupted (12k steps: about a millisecond here)
_CHECKPOINT_EVERY = 200  # inline commits between WAL checkpoints (about SQLite's 1000 pages)


class StoreConnections:
    """The connections of a `SqliteStoreBackend` and the thread its blocking calls run on."""

    def __init__(self, path: str, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self.busy_timeout = float(busy_timeout)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        hold_during_fork(self._lock)
        hold_during_fork(self._reader_lock)
        self.inline_reads = True
        """Reads of async calls run on the caller's thread when they can (see `_read_inline`)."""
        self.inline_writes = True
        """So do writes (see `_write_inline`)."""
        self._writer: sqlite3.Connection | None = None
        self._inline_commits = 0
        self._executor: ThreadPoolExecutor | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=self.busy_timeout, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    async def offload(self, fn: Callable[[], T]) -> T:
        """Run `fn` (a whole batch, made of synchronous calls) on the connection's thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hitl-sqlite-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _call(self, fn: Callable[[sqlite3.Connection], T], sync: bool) -> T:
        def run() -> T:
            with self._lock:
                return fn(self._connection())

        if sync:
            return run()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hitl-sqlite-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    @staticmethod
    def _transaction(conn: sqlite3.Connection, fn: Callable[[], None]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            fn()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def aclose(self) -> None:
        def close(conn: sqlite3.Connection) -> None:
            conn.close()
            self._conn = None

        if self._conn is not None:
            await self._call(close, False)
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def _read_inline(self, fn: Callable[[sqlite3.Connection], T]) -> T | None:
        """Run a read on the calling thread through a read-only connection that never waits,
        or answer None (then the caller takes the store's thread): in WAL mode readers do not
        wait for writers; anything locked, another thread reading, or a read that runs past a
        small budget of SQLite steps (about a millisecond) is interrupted and left to the
        thread, so an event loop is never held up for long."""
        if self._conn is None or self.path in ("", ":memory:"):
            return None  # not set up yet, or a private database only its own connection sees
        if not self._reader_lock.acquire(blocking=False):
            return None
        try:
            if self._reader is None:
                reader = sqlite3.connect(
                    self.path, isolation_level=None, timeout=0, check_same_thread=False
                )
                reader.execute("PRAGMA query_only = 1")
                self._reader = reader
            budget = [_INLINE_BUDGET]

            def spend() -> int:
                budget[0] -= 1
                return 1 if budget[0] < 0 else 0

            self._reader.set_progress_handler(spend, _INLINE_STEPS)
            try:
                return fn(self._reader)
            finally:
                self._reader.set_progress_handler(None, 0)
        except sqlite3.OperationalError:  # busy, locked or over budget: the thread will wait
            return None
        finally:
            self._reader_lock.release()

    def _write_inline(self, fn: Callable[[sqlite3.Connection], None]) -> bool:
        """Run a write transaction on the calling thread, through a connection that never
        waits, and say whether it committed. Like `_read_inline`: when the store's thread is
        busy, another connection holds the write lock, or the write runs past the step budget,
        nothing is changed (rolled back) and the caller takes the store's thread. A committed
        WAL write does not wait for the disk (`synchronous=NORMAL`, as on the thread); the
        WAL checkpoints that do are left to the thread."""
        if self._conn is None or self.path in ("", ":memory:"):
            return False
        if not self._lock.acquire(blocking=False):
            return False
        try:
            writer = self._writer
            if writer is None:
                writer = sqlite3.connect(
                    self.path, isolation_level=None, timeout=0, check_same_thread=False
                )
                writer.execute("PRAGMA synchronous = NORMAL")
                writer.execute("PRAGMA wal_autocheckpoint = 0")
                self._writer = writer
            budget = [_INLINE_BUDGET]

            def spend() -> int:
                budget[0] -= 1
                return 1 if budget[0] < 0 else 0

            try:
                writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # another connection writes
                return False
            writer.set_progress_handler(spend, _INLINE_STEPS)
            try:
                fn(writer)
                writer.execute("COMMIT")
            except BaseException as exc:
                writer.set_progress_handler(None, 0)
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):  # over budget or busy: undone
                    return False
                raise
            writer.set_progress_handler(None, 0)
        finally:
            self._lock.release()
        self._inline_commits += 1
        if self._inline_commits % _CHECKPOINT_EVERY == 0:
            self._checkpoint_soon()
        return True

    def _checkpoint_soon(self) -> None:
        """Have the store's thread copy the WAL back into the database (what SQLite's automatic
        checkpoint does on commit), without waiting for it."""

        def checkpoint() -> None:
            try:
                with self._lock:
                    if self._conn is not None:  # else closed meanwhile
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # the next one will do it

        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="hitl-sqlite-store")
        self._executor.submit(checkpoint)
