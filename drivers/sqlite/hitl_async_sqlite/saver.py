"""`SqliteSaver`: a durable checkpoint store in one SQLite file (WAL), built on aiosqlite.

One thread hop per operation
    aiosqlite runs a `sqlite3` connection on its own worker thread and hands each call over through
    a queue. Awaiting `execute()` once per statement would cost a thread round trip per statement
    (five or more per commit). Instead every operation here is one plain synchronous function in
    `_ops` that runs all its statements in one go on that worker thread, submitted through
    `aiosqlite.Connection._execute(fn, *args)`. That hook is private but has had the same
    signature and meaning (queue `fn(*args)` on the connection's thread, await its result) in every
    release from 0.17 through 0.22; `_connect()` checks it is there and fails loudly if not.

Group commit
    Writes (`commit`, `put_writes`, `delete_thread`, `prune`, `destroy`) are jobs applied by
    `_ops.run_batch`: one `BEGIN IMMEDIATE` ... `COMMIT` with a SAVEPOINT per job. When no batch
    is in flight, a write goes to the thread at once as a batch of one. While one is in flight
    (mostly waiting for the WAL write), new writes queue up, and a flusher task sends everything
    queued as the next batch when it returns, so N concurrent commits cost a few transactions,
    not N. Each job stays all-or-nothing: a head conflict rolls back to its savepoint and is
    raised in its own caller only.

Several processes
    WAL lets readers run beside the one writer; `BEGIN IMMEDIATE` takes the write lock before the
    head is read, so the head check and the writes are atomic across processes; `busy_timeout`
    makes a writer wait for the lock instead of failing at once.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosqlite

from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    LoadedCheckpoint,
    WriteRecord,
)
from hitl_async_sqlite import _ops

__all__ = ["SqliteSaver", "from_url", "parse_url"]

T = TypeVar("T")

MEMORY = ":memory:"
JOURNAL_MODES = frozenset({"WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"})
SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
URL_OPTIONS = frozenset({"busy_timeout", "synchronous", "journal_mode"})
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """Split a `sqlite:` URL into a database path and its query options.

    `sqlite:///relative.db` is relative to the current directory (made absolute here),
    `sqlite:////abs/path.db` is absolute, `sqlite:///:memory:`, `sqlite://:memory:` and
    `sqlite://` are a private in-memory database. Percent-escapes in the path are decoded; the
    query may set `busy_timeout`, `synchronous` and `journal_mode`.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        raise ValueError(f"not a sqlite URL (scheme {parts.scheme!r}); expected sqlite:///file.db")
    if parts.fragment:
        raise ValueError("a sqlite URL has no #fragment; percent-encode '#' in file names")
    options = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    unknown = set(options) - URL_OPTIONS
    if unknown:
        raise ValueError(
            f"unknown sqlite URL option(s) {sorted(unknown)}; known: {sorted(URL_OPTIONS)}"
        )
    path = unquote(parts.path)
    if parts.netloc:
        if parts.netloc == MEMORY and path in ("", "/"):
            return MEMORY, options
        raise ValueError(
            f"sqlite URLs have no host (got {parts.netloc!r}): use sqlite:///relative.db, "
            "sqlite:////absolute/path.db or sqlite:///:memory:"
        )
    relative = path[1:] if path.startswith("/") else path
    if relative in ("", MEMORY):
        return MEMORY, options
    if relative.startswith("/") or _WINDOWS_DRIVE.match(relative):
        return relative, options
    return os.path.abspath(relative), options


def from_url(url: str, **options: Any) -> SqliteSaver:
    """The `hitl_async.drivers` entry point: a `SqliteSaver` for a `sqlite:` URL.

    Keyword options override the URL's query options.
    """
    path, query = parse_url(url)
    merged: dict[str, Any] = {**query, **options}
    return SqliteSaver(path, **merged)


def _utc_iso(moment: datetime) -> str:
    """ISO-8601 in UTC, comparable as text with `CheckpointRecord.created_at`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class _Pending:
    """A queued write job and the future its caller awaits."""

    __slots__ = ("future", "job")

    def __init__(self, job: _ops.Job, future: asyncio.Future[Any]) -> None:
        self.job = job
        self.future = future


class SqliteSaver(BaseSaver):
    """Checkpoints in a SQLite database file, safe for many tasks and several processes.

    Constructing one does no I/O: the connection opens (and the schema is created) on first use in
    the running event loop, to which the saver is then bound. Close it with `aclose()`.

    Options: `busy_timeout` seconds to wait for another writer's lock (default 30);
    `journal_mode` (default "WAL"); `synchronous` ("NORMAL" by default under WAL, else "FULL");
    `max_batch`, the most write jobs grouped into one transaction (default 512).
    """

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
        self._db: aiosqlite.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open_lock: asyncio.Lock | None = None
        self._queue: list[_Pending] = []
        self._writing = False  # a batch is in flight (sent by a caller or the flusher)
        self._idle = asyncio.Event()
        self._idle.set()
        self._flusher: asyncio.Task[None] | None = None  # strong ref to the running flusher
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SqliteSaver:
        """Same as the module-level `from_url`."""
        return from_url(url, **options)

    def __repr__(self) -> str:
        return f"SqliteSaver({self.path!r}, journal_mode={self.journal_mode!r})"

    # ------------------------------------------------------------------ connection

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._open_lock = asyncio.Lock()
        elif self._loop is not loop:
            raise RuntimeError(
                f"{self!r} is bound to the event loop it was first used in; create one saver per "
                "event loop"
            )
        return loop

    async def _connect(self) -> aiosqlite.Connection:
        """The open connection, opening it and applying migrations on first call."""
        self._bind_loop()
        if self._db is not None:
            return self._db
        assert self._open_lock is not None
        async with self._open_lock:
            if self._db is not None:
                return self._db
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            db = aiosqlite.connect(self.path, isolation_level=None, timeout=self.busy_timeout)
            if not callable(getattr(db, "_execute", None)):
                raise RuntimeError(
                    "this aiosqlite has no Connection._execute(fn, *args) hook; "
                    "hitl-async-sqlite supports aiosqlite 0.20 to 0.22"
                )
            await db
            try:
                await db._execute(self._configure_and_migrate, db)
            except BaseException:
                await db.close()
                raise
            self._db = db
            return db

    def _configure_and_migrate(self, db: aiosqlite.Connection) -> None:
        conn = db._conn
        _ops.configure(conn, self.journal_mode, self.synchronous, int(self.busy_timeout * 1000))
        _ops.migrate(conn)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(raw_sqlite3_connection, *args)` on the connection's thread: one hop."""
        db = await self._connect()
        return await db._execute(_call_with_conn, db, fn, args)  # type: ignore[no-any-return]

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in one read transaction (one snapshot), in one hop."""
        return await self._run(_ops.read, _bound(fn, args))

    async def _write(self, job: _ops.Job) -> Any:
        """Apply a write job all-or-nothing, grouped with whatever else is queued.

        When no batch is in flight the job goes to the thread at once, as a batch of one (no
        extra task, lowest latency). Otherwise it is queued and the flusher sends everything
        queued as the next batch as soon as the one in flight is done.
        """
        db = await self._connect()
        loop = self._bind_loop()
        if not self._writing:
            self._writing = True
            self._idle.clear()
            try:
                [(ok, value)] = await db._execute(_call_with_conn, db, _ops.run_batch, ([job],))
            finally:
                if self._queue:  # others queued meanwhile: hand over to the flusher
                    self._flusher = loop.create_task(self._flush(), name=f"{self!r} flusher")
                else:
                    self._writing = False
                    self._idle.set()
            if ok:
                return value
            raise value
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Pending(job, future))
        return await future

    async def _flush(self) -> None:
        """Ship queued jobs in batches until the queue is empty (`_writing` is set meanwhile)."""
        try:
            while self._queue:
                taken = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                batch = [p for p in taken if not p.future.done()]  # skip callers cancelled
                if not batch:
                    continue
                db = self._db
                assert db is not None
                try:
                    results = await db._execute(
                        _call_with_conn, db, _ops.run_batch, ([p.job for p in batch],)
                    )
                except asyncio.CancelledError:
                    _fail(
                        batch,
                        RuntimeError(
                            "the saver's group-commit task was cancelled while "
                            "this write was in flight; its outcome is unknown"
                        ),
                    )
                    raise
                except Exception as exc:
                    _fail(batch, exc)
                    continue
                for pending, (ok, value) in zip(batch, results, strict=True):
                    if pending.future.done():
                        continue
                    if ok:
                        pending.future.set_result(value)
                    else:
                        pending.future.set_exception(value)
        finally:
            if self._queue:  # only after cancellation
                _fail(self._queue, RuntimeError(f"{self!r}: group-commit task stopped"))
                self._queue.clear()
            self._writing = False
            self._flusher = None
            self._idle.set()

    async def setup(self) -> None:
        """Open the connection, set WAL/busy timeout and apply schema migrations (idempotent)."""
        await self._connect()

    async def aclose(self) -> None:
        """Finish queued writes, then close the connection and its thread."""
        if self._closed:
            return
        self._closed = True
        await self._idle.wait()  # queued and in-flight writes finish first
        if self._open_lock is not None:
            async with self._open_lock:
                db, self._db = self._db, None
        else:
            db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def destroy(self) -> None:
        """Delete every row of every table (for tests); the schema stays."""
        await self._write(_ops.destroy_job)

    # ------------------------------------------------------------------ BaseSaver

    async def commit(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        *,
        expected_head: str | None,
        writes: Sequence[WriteRecord] = (),
    ) -> None:
        """Store a checkpoint and move the head, iff the head is `expected_head` (see BaseSaver)."""
        await self._write(_ops.commit_job(record, blobs, expected_head, writes))

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
    ) -> None:
        """Upsert pending writes by `(task_id, idx)`."""
        if writes:
            await self._write(_ops.put_writes_job(thread_id, checkpoint_ns, checkpoint_id, writes))

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        """The head (or `checkpoint_id`) with its blobs and writes, in one hop; else `None`."""
        return await self._read(_ops.load, thread_id, checkpoint_ns, checkpoint_id)

    async def history(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        """Checkpoints newest first; `< before`; metadata `filter`; at most `limit`."""
        return await self._read(_ops.history, thread_id, checkpoint_ns, before, limit, filter)

    async def delete_thread(self, thread_id: str) -> None:
        """Remove every row of the thread, in every namespace."""
        await self._write(_ops.delete_thread_job(thread_id))

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        """Delete old checkpoints (heads always kept), their writes and orphaned blobs."""
        if keep_last is None and newer_than is None:
            return 0
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"keep_last must be at least 1, got {keep_last}")
        cutoff = _utc_iso(newer_than) if newer_than is not None else None
        removed: int = await self._write(_ops.prune_job(thread_id, keep_last, cutoff))
        return removed

    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        """Ids of threads with at least one checkpoint."""
        return await self._read(_ops.list_threads, limit)


def _call_with_conn(db: aiosqlite.Connection, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """On the worker thread: call `fn` with the raw `sqlite3.Connection` first."""
    conn: sqlite3.Connection = db._conn
    return fn(conn, *args)


def _bound(fn: Callable[..., T], args: tuple[Any, ...]) -> Callable[[sqlite3.Connection], T]:
    def call(conn: sqlite3.Connection) -> T:
        return fn(conn, *args)

    return call


def _fail(batch: Sequence[_Pending], exc: BaseException) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(exc)
