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

Coordination (leases, the inbox index, the run queue; SQL in `_coordination`)
    Every decision is a write job, so it runs under the write lock: `acquire_lease` reads the
    thread's `leases` row and upserts it with the next token in one transaction, `claim_request`
    picks the oldest runnable request and marks it running in one transaction, so processes
    sharing the file never both win. Fencing: `commit`, `commit_many` and `put_writes` check
    the lease row (same token, not released, not expired) first thing in their own transaction
    and raise `LeaseLostError` having written nothing; `inbox=` replaces the thread's `inbox`
    rows in that transaction too. "Now" is `time.time()`, shared by the processes of a machine.
    SQLite cannot notify another process: `wait_for_change` / `wait_for_work` poll
    `PRAGMA data_version` (it changes when another connection commits) with backoff from 5 ms
    to 100 ms, one cheap hop per poll; the saver's own commits, which that pragma ignores, wake
    its waiters directly (`_watch`). `wait_for_change` may wake for another thread's change.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    Commit,
    InboxEntry,
    Lease,
    LoadedCheckpoint,
    RunRequest,
    WriteRecord,
    prune_cutoff,
)
from hitl_async.checkpoint.capabilities import (
    CacheStore,
    ChangeFeed,
    InboxQuery,
    InboxStore,
    LeaseStore,
    RunQuery,
    RunQueueStore,
)
from hitl_async.checkpoint.ids import check_id
from hitl_async.checkpoint.lifecycle import (
    after_fork_in_child,
    creation_site,
    forked_away,
    serves_one_caller,
    warn_unclosed,
)
from hitl_async.checkpoint.options import url_options
from hitl_async.checkpoint.releases import PendingReleases
from hitl_async.errors import StoreLostError, StoreUnavailableError
from hitl_async_sqlite import _cache, _ops
from hitl_async_sqlite import _coordination as _coord
from hitl_async_sqlite._watch import Key, Watchers, queue_key, thread_key
from hitl_async_sqlite._worker import CLOSE, READ, WRITE, Job, Worker

__all__ = ["SqliteSaver", "SqliteUrlOptions", "from_url", "parse_url"]

T = TypeVar("T")

MEMORY = ":memory:"
JOURNAL_MODES = frozenset({"WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"})
SYNCHRONOUS = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


@dataclass(frozen=True)
class SqliteUrlOptions:
    """The `SqliteSaver` options a `sqlite:` URL's query may set (see `SqliteSaver`)."""

    busy_timeout: float = 30.0
    synchronous: str | None = None
    journal_mode: str = "WAL"
    max_batch: int = 512


URL_OPTIONS = frozenset(f.name for f in fields(SqliteUrlOptions))
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")
POLL_MIN = 0.005
"""First pause of `wait_for_change` / `wait_for_work` between two looks at the store (s)."""
POLL_MAX = 0.1
"""Longest pause between two looks (the backoff doubles up to it)."""


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
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
    parse_qsl(parts.query, strict_parsing=bool(parts.query))  # (a malformed query: an error)
    options, unknown = url_options(SqliteUrlOptions, parts.query)
    if unknown:
        names = sorted(name for name, _ in unknown)
        raise ValueError(f"unknown sqlite URL option(s) {names}; known: {sorted(URL_OPTIONS)}")
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
        _ops.configure(conn, journal_mode, synchronous, busy_ms)
        _ops.migrate(conn)
        if path != MEMORY:
            found = _ops.store_id(conn)
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


class SqliteSaver(BaseSaver, LeaseStore, InboxStore, RunQueueStore, ChangeFeed, CacheStore):
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
        self._watchers = Watchers()
        self._identity = StoreIdentity(self.path)
        self._pending_releases = PendingReleases()
        self._lease_clock = _coord.LeaseClock()  # (used only with the connection held)
        self._site = creation_site()
        self._finalizer: weakref.finalize[Any, SqliteSaver] | None = None
        after_fork_in_child(self, _forget_parent)

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
        await self._write(_ops.destroy_job)

    # ------------------------------------------------------------------ BaseSaver

    async def commit(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        *,
        expected_head: str | None,
        writes: Sequence[WriteRecord] = (),
        lease: Lease | None = None,
        inbox: Sequence[InboxEntry] | None = None,
    ) -> None:
        """Store a checkpoint and move the head, iff the head is `expected_head` and `lease` (if
        given) is still live; replace the thread's inbox with `inbox` (see BaseSaver)."""
        check_id("thread id", record.thread_id)
        job = _ops.commit_job(record, blobs, expected_head, writes, lease, inbox)
        await self._write(job, thread_key(record.thread_id))

    async def commit_many(
        self, commits: Sequence[Commit], *, lease: Lease | None = None, release: bool = False
    ) -> None:
        """Commit a chain in one hop and one transaction, all or nothing: on a lease or head
        failure nothing of the chain is stored and that failure is raised. With `release`, the
        lease is released in the same transaction (only if the chain was written)."""
        for c in commits:
            check_id("thread id", c.record.thread_id)
        threads = [c.record.thread_id for c in commits]
        if release and lease is not None:
            threads.append(lease.thread_id)
        if not threads:
            return
        keys = tuple(dict.fromkeys(thread_key(t) for t in threads))
        await self._write(_ops.commit_many_job(commits, lease, release), *keys)

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        *,
        lease: Lease | None = None,
        inbox: Sequence[InboxEntry] | None = None,
    ) -> None:
        """Upsert pending writes by `(task_id, idx)`, fenced by `lease`, replacing the inbox."""
        check_id("thread id", thread_id)
        if writes or lease is not None or inbox is not None:
            job = _ops.put_writes_job(thread_id, checkpoint_ns, checkpoint_id, writes, lease, inbox)
            await self._write(job, thread_key(thread_id))

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        """The head (or `checkpoint_id`) with its blobs and writes, in one hop; else `None`."""
        check_id("thread id", thread_id)
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
        check_id("thread id", thread_id)
        return await self._read(_ops.history, thread_id, checkpoint_ns, before, limit, filter)

    async def delete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint row and inbox entry of the thread (its lease row stays, so
        fencing tokens keep growing)."""
        check_id("thread id", thread_id)
        await self._write(_ops.delete_thread_job(thread_id), thread_key(thread_id))

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        """Delete old checkpoints (heads always kept), their writes and orphaned blobs."""
        check_id("thread id", thread_id)
        if keep_last is None and newer_than is None:
            return 0
        cutoff = prune_cutoff(keep_last, newer_than)
        removed: int = await self._write(_ops.prune_job(thread_id, keep_last, cutoff))
        return removed

    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        """Ids of threads with at least one checkpoint."""
        return await self._read(_ops.list_threads, limit)

    # ------------------------------------------------------------------ node cache

    async def cache_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """Cached node results of `keys` that have not expired (table `node_cache`)."""
        return await self._read(_cache.cache_get, list(keys)) if keys else {}

    async def cache_set(self, entries: Sequence[tuple[str, str, bytes, float | None]]) -> None:
        """Cache node results, each for its ttl (seconds; None: until cleared)."""
        if entries:
            await self._write(_cache.cache_set_job(entries))

    async def cache_clear(self, namespaces: Sequence[str] | None = None) -> None:
        """Delete the cached results of `namespaces` (None: all)."""
        await self._write(_cache.cache_clear_job(namespaces))

    # ------------------------------------------------------------------ coordination: leases

    async def acquire_lease(
        self, thread_id: str, owner: str, ttl: float, *, graph: str = ""
    ) -> Lease:
        """Take the thread's lease with the next token, or `ThreadBusyError` (one transaction)."""
        check_id("thread id", thread_id)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        job = _coord.acquire_lease_job(thread_id, owner, ttl, graph, self._lease_clock)
        lease: Lease = await self._write(job)
        return lease

    async def acquire_and_load(
        self,
        thread_id: str,
        owner: str,
        ttl: float,
        *,
        graph: str = "",
        checkpoint_ns: str = "",
        checkpoint_id: str | None = None,
    ) -> tuple[Lease, LoadedCheckpoint | None]:
        """`acquire_lease` then `load`, in one hop and one transaction."""
        check_id("thread id", thread_id)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        job = _coord.acquire_and_load_job(
            thread_id, owner, ttl, graph, checkpoint_ns, checkpoint_id, self._lease_clock
        )
        acquired: tuple[Lease, LoadedCheckpoint | None] = await self._write(job)
        return acquired

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend the lease `ttl` seconds from now, or `LeaseLostError`."""
        renewed: Lease = await self._write(_coord.renew_lease_job(lease, ttl, self._lease_clock))
        return renewed

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up if its token is still the thread's; if the store cannot be reached,
        it is released again before this saver next acquires the thread."""
        try:
            await self._release_lease_once(lease)
        except Exception:
            self._pending_releases.failed(lease)
            raise

    async def _release_lease_once(self, lease: Lease) -> None:
        """Mark the lease released if its token is still the thread's; else do nothing."""
        await self._write(_coord.release_lease_job(lease), thread_key(lease.thread_id))

    async def expired_leases(self, *, graph: str | None = None, limit: int = 100) -> list[Lease]:
        """Unreleased leases past their expiry, oldest expiry first."""
        if limit <= 0:
            return []
        return await self._read(_coord.expired_leases, graph, limit, self._lease_clock)

    # ------------------------------------------------------------------ coordination: inbox

    async def list_inbox(self, query: InboxQuery = InboxQuery()) -> list[InboxEntry]:  # noqa: B008
        """A keyset page of pending interrupts, from the `inbox` table only."""
        return await self._read(_coord.list_inbox, query)

    # ------------------------------------------------------------------ coordination: runs

    async def enqueue(self, request: RunRequest) -> None:
        """Store a queued request (`ValueError` if its id exists) and wake waiting workers."""
        check_id("thread id", request.thread_id)
        job = _coord.enqueue_job(request)
        await self._write(job, queue_key(request.queue), thread_key(request.thread_id))

    async def claim_request(self, queue: str, owner: str, ttl: float) -> RunRequest | None:
        """Claim the oldest runnable request of `queue` (pick and mark in one transaction)."""
        claimed: RunRequest | None = await self._write(_coord.claim_job(queue, owner, ttl))
        return claimed

    async def renew_claim(self, request_id: str, owner: str, ttl: float) -> bool:
        """Extend `owner`'s claim from now; False if it is no longer held."""
        renewed: bool = await self._write(_coord.renew_claim_job(request_id, owner, ttl))
        return renewed

    async def finish_request(
        self,
        request_id: str,
        owner: str | None,
        status: str,
        *,
        result: bytes | None = None,
        error: str | None = None,
    ) -> bool:
        """Set a final status (or `queued` to give it back); see `BaseSaver`."""
        watchers = self._watchers

        def committed(changed: tuple[str, str] | None) -> None:
            if changed is not None:
                watchers.notify((queue_key(changed[0]), thread_key(changed[1])))

        job = _coord.finish_job(request_id, owner, status, result, error)
        changed = await self._call(WRITE, job, committed)
        return changed is not None

    async def get_request(self, request_id: str) -> RunRequest | None:
        """The request, or None."""
        return await self._read(_coord.get_request, request_id)

    async def list_requests(self, query: RunQuery = RunQuery()) -> list[RunRequest]:  # noqa: B008
        """A page of requests, newest first; damaged rows listed with `damaged` set."""
        return await self._read(_coord.list_requests, query)

    # ------------------------------------------------------------------ coordination: waiting

    async def wait_for_work(self, queue: str, timeout: float) -> None:
        """Return once a request of `queue` is runnable, or after `timeout` seconds.

        Re-checks the queue when another connection committed (`PRAGMA data_version`), when
        this saver enqueued or finished a request of it, or when a live claim expired.
        """
        if timeout <= 0:
            return
        deadline = time.monotonic() + timeout
        with self._watchers.watch(queue_key(queue)) as waiter:
            seen: int | None = None  # None: re-read the queue's state
            expiry: float | None = None
            delay = POLL_MIN
            while True:
                seen, state = await self._read(_coord.poll_work, queue, seen)
                if state is not None:
                    ready, expiry = state
                    if ready:
                        return
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                await waiter.sleep(min(delay, left))
                delay = min(delay * 2, POLL_MAX)
                if waiter.fired or (expiry is not None and time.time() >= expiry):
                    seen = None
                waiter.arm()

    async def wait_for_change(self, thread_id: str, timeout: float) -> None:
        """Return once the thread may have changed, or after `timeout` seconds.

        Woken at once by this saver's own commits, writes, releases and request updates of the
        thread; by any commit of another connection (any thread) within one poll interval.
        """
        if timeout <= 0:
            return
        deadline = time.monotonic() + timeout
        with self._watchers.watch(thread_key(thread_id)) as waiter:
            seen = await self._run(_coord.data_version)
            delay = POLL_MIN
            while not waiter.fired:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                await waiter.sleep(min(delay, left))
                delay = min(delay * 2, POLL_MAX)
                if waiter.fired or await self._run(_coord.data_version) != seen:
                    return


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


def _forget_parent(saver: SqliteSaver) -> None:
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
