"""`SqliteSaver`: a durable checkpoint store in one SQLite file (WAL), on one worker thread.

One thread hop per operation
    `sqlite3` blocks, so the connection lives on a worker thread of its own (`_worker.Worker`)
    and every operation is one plain synchronous function in `_ops` that runs all its statements
    there in one go: a commit, a load or a prune costs one thread round trip however many
    statements it runs (awaiting one statement at a time would cost five or more per commit).

Any event loop
    The handoff is loop-agnostic: a caller queues a job carrying a callback that wakes it in its
    own loop (`loop.call_soon_threadsafe` under asyncio, the trio token under trio), so one
    saver serves every loop that uses it, alternately or at once: the sync facade's portal loop,
    then the user's `asyncio.run()`, then another `asyncio.run()`, or several threads' loops.
    Nothing in the saver belongs to a loop, so a loop that ends leaves nothing behind.

Group commit
    Writes (`commit`, `put_writes`, `delete_thread`, `prune`, `destroy`) are jobs applied by
    `_ops.run_batch`: one `BEGIN IMMEDIATE` ... `COMMIT` with a SAVEPOINT per job. An idle worker
    takes a write at once, as a batch of one; writes queued while a batch is in flight (mostly
    waiting for the WAL write), from any loop, go together as the next batch, so N concurrent
    commits cost a few transactions, not N. Each job stays all-or-nothing: a head conflict rolls
    back to its savepoint and is raised in its own caller only.

Several processes
    WAL lets readers run beside the one writer; `BEGIN IMMEDIATE` takes the write lock before the
    head is read, so the head check and the writes are atomic across processes; `busy_timeout`
    makes a writer wait for the lock instead of failing at once.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    LoadedCheckpoint,
    WriteRecord,
)
from hitl_async_sqlite import _ops
from hitl_async_sqlite._worker import CLOSE, READ, WRITE, Job, Worker

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


def _open(path: str, journal_mode: str, synchronous: str, busy_ms: int) -> sqlite3.Connection:
    """On the worker thread: open the connection, set its pragmas, apply migrations."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_ms / 1000)
    try:
        _ops.configure(conn, journal_mode, synchronous, busy_ms)
        _ops.migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class SqliteSaver(BaseSaver):
    """Checkpoints in a SQLite database file, safe for many tasks, loops and processes.

    Constructing one does no I/O: the worker thread starts, and the connection opens (and the
    schema is created), on first use. Any asyncio (or trio) event loop may use the saver, several
    at once. Close it with `aclose()` (from any loop); a saver dropped unclosed closes its
    connection when garbage-collected or at interpreter exit.

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
        self._lock = threading.Lock()  # guards _worker and _closed; never held across an await
        self._worker: Worker | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SqliteSaver:
        """Same as the module-level `from_url`."""
        return from_url(url, **options)

    def __repr__(self) -> str:
        return f"SqliteSaver({self.path!r}, journal_mode={self.journal_mode!r})"

    # ------------------------------------------------------------------ worker

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
                )
                self._worker = Worker(f"hitl-async-sqlite {self.path}", opener, self.max_batch)
                weakref.finalize(self, self._worker.stop)
            return self._worker

    async def _call(self, kind: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the worker thread and wait for it in the running loop: one hop."""
        return await self._await(self._get_worker(), Job(kind, fn))  # type: ignore[no-any-return]

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
        return job.outcome()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(raw_sqlite3_connection, *args)` on the connection's thread: one hop."""
        return await self._call(READ, _bound(fn, args))

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in one read transaction (one snapshot), in one hop."""
        return await self._call(READ, _bound(_ops.read, (_bound(fn, args),)))

    async def _write(self, job: _ops.Job) -> Any:
        """Apply a write job all-or-nothing, grouped with the writes queued beside it."""
        return await self._call(WRITE, job)

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
