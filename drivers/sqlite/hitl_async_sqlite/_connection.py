"""The connection of a `SqliteSaver`: one worker thread owning the `sqlite3` connection, and
the one-hop handoff every operation goes through (`_call`), from any asyncio or trio loop.

The file's identity (`StoreIdentity`) is checked when the connection opens and after every
job, so a file deleted or replaced under a running saver is a `StoreLostError`; errors of the
file (locked, read-only, full, corrupt) are a `StoreUnavailableError` (`_unavailable`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import threading
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from hitl_async.checkpoint.lifecycle import (
    after_fork_in_child,
    creation_site,
    forked_away,
    serves_one_caller,
    warn_unclosed,
)
from hitl_async.checkpoint.releases import PendingReleases
from hitl_async.errors import StoreLostError, StoreUnavailableError
from hitl_async_sqlite import _coordination as _coord
from hitl_async_sqlite import _ops, _schema
from hitl_async_sqlite._url import MEMORY
from hitl_async_sqlite._watch import Key, Watchers
from hitl_async_sqlite._worker import CLOSE, READ, WRITE, Job, Worker
from hitl_async_sqlite._writes import destroy_job

__all__ = ["SqliteConnection", "StoreIdentity"]

T = TypeVar("T")

JOURNAL_MODES = frozenset({"WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"})
SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


@dataclass(slots=True)
class StoreIdentity:
    """What this saver knows of its file: the random id written at setup and the file's
    (device, inode) when the connection opened it. Shared by the saver and its opener."""

    path: str
    id: str | None = None
    inode: tuple[int, int] | None = None

    def lost(self) -> StoreLostError | None:
        """The error to raise if the file at `path` is not the one the connection uses."""
        if self.inode is None:
            return None
        where = f"SQLite file {self.path!r}"
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return StoreLostError(
                where, "the database file was deleted while this saver was using it"
            )
        except OSError:
            return None  # (not ours to judge: the next statement reports it)
        if (st.st_dev, st.st_ino) != self.inode:
            return StoreLostError(
                where,
                "the database file was replaced by another file while this saver was using it",
            )
        return None


def _open(
    path: str, journal_mode: str, synchronous: str, busy_ms: int, identity: StoreIdentity
) -> sqlite3.Connection:
    """On the worker thread: open the connection, set its pragmas, apply migrations, and check
    the file is the store this saver was using (its id), if it used one before."""
    conn = sqlite3.connect(  # used by the worker thread, or by a caller while the worker idles
        path, isolation_level=None, timeout=busy_ms / 1000, check_same_thread=False
    )
    try:
        _schema.configure(conn, journal_mode, synchronous, busy_ms)
        _schema.migrate(conn)
        if path != MEMORY:
            found = _schema.store_id(conn)
            if identity.id is not None and found != identity.id:
                raise StoreLostError(
                    f"SQLite file {path!r}",
                    f"the file holds another store (id {found!r}, not {identity.id!r}): it was "
                    "replaced or deleted and created anew",
                )
            st = os.stat(path)
            identity.id, identity.inode = found, (st.st_dev, st.st_ino)
    except BaseException:
        conn.close()
        raise
    return conn


# SQLite primary result codes (`sqlite3.Error.sqlite_errorcode & 0xFF`) that mean the file, not
# the call, is the problem: what each says, and whether waiting may cure it.
_STORE_ERRORS: dict[int, tuple[str, bool]] = {
    5: ("the database file is locked by another connection or process", True),  # BUSY
    6: ("a table is locked by another connection", True),  # LOCKED
    3: ("access to the database file was denied", False),  # PERM
    8: ("the database file, its directory or its -wal/-shm files are read-only", False),
    10: ("a disk I/O error occurred on the database file", False),  # IOERR
    11: ("the database file is corrupt", False),  # CORRUPT
    13: ("the database or the disk is full", False),  # FULL
    14: ("the database file cannot be opened", False),  # CANTOPEN
    26: ("the file is not a SQLite database", False),  # NOTADB
}


def _unavailable(
    path: str, busy_timeout: float, exc: BaseException
) -> StoreUnavailableError | None:
    """`StoreUnavailableError` for an error of the file (locked, read-only, full, I/O, corrupt),
    found in `exc` or its causes (a failed batch wraps it); None for any other error."""
    error: BaseException | None = exc
    while error is not None and not isinstance(error, sqlite3.Error):
        error = error.__cause__
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    known = _STORE_ERRORS.get(code & 0xFF)
    if known is None:
        return None
    cause, transient = known
    detail = f"{error} ({getattr(error, 'sqlite_errorname', code)})"
    if code & 0xFF == 5:
        cause += f", still after waiting busy_timeout={busy_timeout:g} s"
    elif code & 0xFF == 14 and path != MEMORY:
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            cause += f" (its directory {folder} does not exist: create it, or fix the path)"
        elif not os.access(folder, os.W_OK) or (
            os.path.exists(path) and not os.access(path, os.W_OK)
        ):
            cause += " (it or its directory is read-only; WAL needs its -wal and -shm files)"
    return StoreUnavailableError(f"SQLite file {path!r}", f"{cause}: {detail}", transient=transient)


def _release_worker(worker: Worker, what: str, site: str) -> None:
    """The finalizer of a saver collected without `aclose()`: warn, and close its connection
    once the jobs already queued are done."""
    warn_unclosed(what, site)
    worker.stop()


def _forget_parent(saver: SqliteConnection) -> None:
    """In a forked child: drop the parent's worker (its thread does not exist here and its
    connection is the parent's: never closed here); the child opens its own on first use."""
    if saver._finalizer is not None:
        saver._finalizer.detach()
        saver._finalizer = None
    forked_away.append(saver._worker)
    saver._worker = None
    saver._lock = threading.Lock()
    saver._watchers = Watchers()


def _wake(future: asyncio.Future[None]) -> None:
    """In the caller's loop: wake the waiting caller (unless it was cancelled meanwhile)."""
    if not future.done():
        future.set_result(None)


def _noop(conn: sqlite3.Connection) -> None:
    pass


def _bound(fn: Callable[..., T], args: tuple[Any, ...]) -> Callable[[sqlite3.Connection], T]:
    def call(conn: sqlite3.Connection) -> T:
        return fn(conn, *args)

    return call


class SqliteConnection:
    """What every part of `SqliteSaver` stands on: its options, the worker thread (started on
    first use) and the one-hop calls `_run` / `_read` / `_write`. The capability mixins
    (`_checkpoints`, `_leases`, `_inbox`, `_runs`, `_changes`, `_cache`) subclass it;
    `SqliteSaver` composes them."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float | str = 30.0,
        synchronous: str | None = None,
        journal_mode: str = "WAL",
        max_batch: int = 512,
    ) -> None:
        self.path: str = os.fspath(path)
        self.busy_timeout: float = float(busy_timeout)
        if self.busy_timeout < 0:
            raise ValueError(f"busy_timeout must be >= 0 seconds, got {busy_timeout!r}")
        self.journal_mode: str = str(journal_mode).upper()
        if self.journal_mode not in JOURNAL_MODES:
            raise ValueError(f"journal_mode must be one of {sorted(JOURNAL_MODES)}")
        if synchronous is None:
            synchronous = "NORMAL" if self.journal_mode == "WAL" else "FULL"
        self.synchronous: str = str(synchronous).upper()
        if self.synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS)}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.max_batch = max_batch
        self._lock = threading.Lock()  # guards _worker and _closed; never held across an await
        self._worker: Worker | None = None
        self._closed = False
        self._watchers = Watchers()
        self._identity = StoreIdentity(self.path)
        self._pending_releases = PendingReleases()
        self._lease_clock = _coord.LeaseClock()  # (used only with the connection held)
        self._site = creation_site()
        self._finalizer: weakref.finalize[Any, SqliteConnection] | None = None
        after_fork_in_child(self, _forget_parent)

    def __repr__(self) -> str:
        return f"SqliteSaver({self.path!r}, journal_mode={self.journal_mode!r})"

    def _get_worker(self) -> Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            if self._worker is None:
                opener = functools.partial(  # no reference to self: a dropped saver is collected
                    _open,
                    self.path,
                    self.journal_mode,
                    self.synchronous,
                    int(self.busy_timeout * 1000),
                    self._identity,
                )
                self._worker = Worker(
                    f"hitl-async-sqlite {self.path}",
                    opener,
                    self.max_batch,
                    int(self.busy_timeout * 1000),
                )
                self._finalizer = weakref.finalize(
                    self, _release_worker, self._worker, repr(self), self._site
                )
                self._finalizer.atexit = False  # (at exit, `_worker` closes every connection)
            return self._worker

    async def _call(
        self,
        kind: str,
        fn: Callable[[sqlite3.Connection], T],
        committed: Callable[[Any], object] | None = None,
    ) -> T:
        """Run `fn(conn)` on the worker thread and wait for it in the running loop: one hop.

        A sync-API caller's own loop (it serves that one caller, which waits for this anyway)
        runs it itself when the worker is idle and no other connection holds a lock: no hop."""
        job = Job(kind, fn, committed)
        worker = self._get_worker()
        try:
            here = serves_one_caller(asyncio.get_running_loop())
        except RuntimeError:  # trio
            here = False
        if here and worker.run_here(job):
            return self._outcome(job)  # type: ignore[no-any-return]
        return await self._await(worker, job)  # type: ignore[no-any-return]

    async def _await(self, worker: Worker, job: Job) -> Any:
        """Queue `job` with a wake-up in the running loop (asyncio or trio); wait; its outcome.

        A job still queued when the wait is cancelled is dropped (a CLOSE job runs anyway).
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            future: asyncio.Future[None] = loop.create_future()
            job.schedule = loop.call_soon_threadsafe
            job.wake = functools.partial(_wake, future)
            wait: Callable[[], Awaitable[Any]] = lambda: future  # noqa: E731
        else:
            try:
                import trio

                token = trio.lowlevel.current_trio_token()
            except (ImportError, RuntimeError):
                raise RuntimeError(f"{self!r} must be used in an asyncio or trio loop") from None
            done = trio.Event()
            job.schedule = token.run_sync_soon
            job.wake = done.set
            wait = done.wait
        try:
            worker.submit(job)
        except RuntimeError:  # aclose() won the race from another thread
            raise RuntimeError(f"{self!r} is closed") from None
        try:
            await wait()
        except BaseException:
            worker.cancel(job)
            raise
        return self._outcome(job)

    def _outcome(self, job: Job) -> Any:
        """The settled `job`'s result, or its error mapped to the store's errors."""
        # The file deleted or swapped before or during the job: what it did is lost.
        lost = self._identity.lost() if job.kind != CLOSE else None
        try:
            outcome = job.outcome()
        except (sqlite3.Error, _ops.BatchFailed) as exc:
            if lost is not None:
                raise lost from exc
            mapped = _unavailable(self.path, self.busy_timeout, exc)
            if mapped is None:
                raise
            raise mapped from exc
        if lost is not None:
            raise lost
        return outcome

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(raw_sqlite3_connection, *args)` on the connection's thread: one hop."""
        return await self._call(READ, _bound(fn, args))

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in one read transaction (one snapshot), in one hop."""
        return await self._call(READ, _bound(_ops.read, (_bound(fn, args),)))

    async def _write(self, job: _ops.Job, *notify: Key) -> Any:
        """Apply a write job all-or-nothing, grouped with the writes queued beside it; once it
        committed, wake this saver's waiters of the `notify` keys."""
        return await self._call(WRITE, job, self._notifier(notify) if notify else None)

    def _notifier(self, keys: tuple[Key, ...]) -> Callable[[Any], None]:
        """A `Job.committed` callback waking the waiters of `keys` (it holds no saver reference,
        only the waiter registry)."""
        watchers = self._watchers

        def committed(value: Any) -> None:
            watchers.notify(keys)

        return committed

    async def setup(self) -> None:
        """Open the connection, set WAL/busy timeout and apply schema migrations (idempotent)."""
        await self._call(READ, _noop)

    async def aclose(self) -> None:
        """Finish queued reads and writes, then close the connection and end its thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            await self._await(worker, Job(CLOSE, _noop))

    async def destroy(self) -> None:
        """Delete every row of every table (for tests); the schema stays."""
        await self._write(destroy_job)
