"""`PostgresSaver`: the PostgreSQL checkpoint driver, on an asyncpg connection pool.

Design notes:
- Every protocol call is one SQL statement, hence one round trip once the statement is in the
  connection's cache. `commit` calls the stored function `hitl_commit`, which row-locks the
  thread's head, compares it with `expected_head`, refuses a checkpoint id already stored (ids
  are never reused) and writes everything or nothing. `load` and `history` return each
  checkpoint with its blobs and writes as parallel arrays in one row; a blob named by the
  checkpoint but not stored is a `SerializationError` (the store is corrupt), never a partial
  state.
- Construction does no I/O. The pool is created on first use inside the running event loop; a
  saver used from another loop later (`asyncio.run` twice, a sync facade's loop) gets a pool of
  its own for that loop. A small "keeper" task per pool closes it when its loop shuts down.
- Connections are returned to the pool without asyncpg's reset query (the driver never changes
  session state), which would otherwise cost a second round trip per operation.
- Coordination (migration 4). Leases live in `leases` (one row per thread, kept after release
  so fencing tokens only grow). With `lease=`, `commit`/`put_writes` call the fenced versions of
  the stored functions, which share-lock the lease row and check token, release and expiry (by
  the server clock) before writing, in the same round trip; the inbox rows of the thread are
  replaced in that transaction too. `claim_request` is one call of `hitl_claim` (FOR UPDATE
  SKIP LOCKED plus a per-thread transaction lock). Commits, writes, releases and deletes NOTIFY
  the schema's change channel, `enqueue`/`finish_request` its queue channel; `wait_for_change` /
  `wait_for_work` wait on a dedicated LISTEN connection per event loop (`_listen.Listener`), not
  taken from the pool, with their timeout as the fallback.
- Runs (migration 5). `acquire_and_load` is one call of `hitl_acquire_and_load`: the lease
  upsert (`hitl_acquire`, which `acquire_lease` calls too), then the load as a statement of its
  own, so a take-over that waited for the previous holder's in-flight commit loads that commit.
  `commit_many` is one call of `hitl_commit_many` with the chain as parallel arrays (each
  checkpoint's blobs and writes located by end offsets; faster than an array of composites or
  one jsonb document): the fence once, every check of the chain before any write, then the
  chain (since migration 6 one statement per table, no longer `hitl_commit` per checkpoint),
  the inbox, the release and one NOTIFY - all or nothing.
- Group commit (migration 6, `group_commit=True`). Many runs of one process call the store at
  once; a round trip (and a transaction, its WAL flush and its NOTIFY) per call is then the
  main cost. Concurrent `acquire_and_load` calls share one round trip, and so do concurrent
  `commit_many`, `put_writes` and `release_lease` calls, through a `Batcher` per kind and event
  loop: a call made while the driver has fewer than `batches_in_flight` batches of its kind in
  flight goes out at once, by the single function as before (no added latency); calls made
  meanwhile are queued and sent together by `hitl_<kind>_batch`, which calls the single
  function per request in one transaction and returns one row per request. A busy thread, a
  conflict or a lost lease is that request's row and its caller's error only. A batch is
  sorted by thread id and namespace, so concurrent batches lock rows in one global order and
  cannot deadlock on each other; a batch that raises all the same (a deadlock with something
  else, a bad value) is rolled back whole and its requests are sent again one by one, each
  getting its own outcome. A batch whose connection fails gives every caller
  `StoreUnavailableError` (the engine retries and reads the head back, as after any lost
  reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import anyio
import asyncpg

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
from hitl_async.checkpoint.batching import Batcher
from hitl_async.checkpoint.capabilities import (
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
from hitl_async.checkpoint.releases import PendingReleases
from hitl_async.checkpoint.rows import (
    checked_inbox_entry,
    checked_metadata,
    checked_request,
    checked_versions,
)
from hitl_async.errors import (
    CheckpointConflictError,
    CorruptRecordError,
    HitlError,
    LeaseLostError,
    SerializationError,
    StoreLostError,
    StoreUnavailableError,
    ThreadBusyError,
)
from hitl_async.telemetry import get_logger
from hitl_async_postgres._cache import PostgresCache
from hitl_async_postgres._listen import Listener
from hitl_async_postgres._migrate import DEFAULT_SCHEMA, migrate
from hitl_async_postgres._migrate import destroy as _destroy_schema
from hitl_async_postgres._queries import Queries
from hitl_async_postgres._schema import channels, quote_schema
from hitl_async_postgres._url import split_url

if TYPE_CHECKING:
    from hitl_async_postgres._migrate import AnyConnection

__all__ = ["PostgresSaver", "from_url"]

log = get_logger(__name__)
_T = TypeVar("_T")


class _PoolFloorOnce(logging.Filter):
    """asyncpg's pool logs a traceback each time it fails to reopen its `min_size` connections
    (every 1-60 s while the server is down). Keep one line per outage (a repeat within
    `window` seconds of the last is dropped) and no traceback: the driver's own
    `StoreUnavailableError` says what is wrong when a call needs the server."""

    window = 120.0

    def __init__(self) -> None:
        super().__init__()
        self.last = -self.window

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("Failed to restore the pool connection floor"):
            return True
        now = time.monotonic()
        repeat, self.last = now - self.last < self.window, now
        if repeat:
            return False
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.msg} (server unreachable: {type(exc).__name__}: {exc})"
            record.args = ()
        record.exc_info = record.exc_text = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_PoolFloorOnce())

_CLOSE_TIMEOUT = 5.0
_FINAL_STATUSES = frozenset({"done", "failed", "cancelled", "queued"})


class _Connection(asyncpg.Connection):
    """A connection released to the pool without a reset query: the driver keeps no session
    state (no SET, LISTEN, cursors or session advisory locks), so resetting only costs a round
    trip. Open transactions are still rolled back by asyncpg on release."""

    def get_reset_query(self) -> str:
        return ""


@dataclass(frozen=True, slots=True)
class _AcquireCall:
    """One `acquire_and_load`: the arguments of `hitl_acquire_and_load`, in order."""

    thread_id: str
    owner: str
    ttl: float
    graph: str
    ns: str
    checkpoint_id: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.thread_id, self.ns)

    def args(self) -> tuple[Any, ...]:
        return (self.thread_id, self.owner, self.ttl, self.graph, self.ns, self.checkpoint_id)


@dataclass(frozen=True, slots=True)
class _ChainCall:
    """One `commit_many` of one namespace, as the parallel arrays `hitl_commit_many` takes."""

    thread_id: str
    ns: str
    token: int | None
    release: bool
    expected: list[str | None]
    ids: list[str]
    parents: list[str | None]
    created: list[str]
    versions: list[str]
    headers: list[bytes]
    metadata: list[str]
    blob_ends: list[int]
    blob_channels: list[str]
    blob_versions: list[str]
    blob_data: list[bytes]
    write_ends: list[int]
    write_tasks: list[str]
    write_idxs: list[int]
    write_channels: list[str]
    write_data: list[bytes]
    write_paths: list[str]
    inbox: list[list[Any]] | None  # the eight inbox columns; None: unchanged

    @property
    def key(self) -> tuple[str, str]:
        return (self.thread_id, self.ns)

    def args(self) -> tuple[Any, ...]:
        """The 29 arguments of `hitl_commit_many`."""
        return (
            self.thread_id,
            self.ns,
            self.token,
            self.release,
            self.expected,
            self.ids,
            self.parents,
            self.created,
            self.versions,
            self.headers,
            self.metadata,
            self.blob_ends,
            self.blob_channels,
            self.blob_versions,
            self.blob_data,
            self.write_ends,
            self.write_tasks,
            self.write_idxs,
            self.write_channels,
            self.write_data,
            self.write_paths,
            *(self.inbox or (None,) * 8),
        )


@dataclass(frozen=True, slots=True)
class _PutWritesCall:
    """One `put_writes`: the arguments of the fenced `hitl_put_writes`."""

    thread_id: str
    ns: str
    checkpoint_id: str
    tasks: list[str]
    idxs: list[int]
    channels: list[str]
    data: list[bytes]
    paths: list[str]
    token: int | None
    inbox: list[list[Any]] | None  # the eight inbox columns; None: unchanged

    @property
    def key(self) -> tuple[str, str]:
        return (self.thread_id, self.ns)

    def args(self) -> tuple[Any, ...]:
        return (
            self.thread_id,
            self.ns,
            self.checkpoint_id,
            self.tasks,
            self.idxs,
            self.channels,
            self.data,
            self.paths,
            self.token,
            *(self.inbox or (None,) * 8),
        )


@dataclass(frozen=True, slots=True)
class _ReleaseCall:
    """One `release_lease`."""

    thread_id: str
    token: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.thread_id, "")

    def args(self) -> tuple[Any, ...]:
        return (self.thread_id, self.token)


def _put_writes_columns(calls: Sequence[_PutWritesCall]) -> list[list[Any]]:
    """The 20 arrays `hitl_put_writes_batch` takes: per request, writes, inbox entries."""
    cols: list[list[Any]] = [[] for _ in range(20)]
    thread, ns, ids, lease, w_end, i_set, i_end = cols[:7]
    writes = inbox = 0
    for c in calls:
        writes += len(c.tasks)
        thread.append(c.thread_id)
        ns.append(c.ns)
        ids.append(c.checkpoint_id)
        lease.append(c.token)
        w_end.append(writes)
        i_set.append(c.inbox is not None)
        if c.inbox is not None:
            inbox += len(c.inbox[0])
            for col, values in zip(cols[12:20], c.inbox, strict=True):
                col.extend(values)
        i_end.append(inbox)
        columns: tuple[list[Any], ...] = (c.tasks, c.idxs, c.channels, c.data, c.paths)
        for col, values in zip(cols[7:12], columns, strict=True):
            col.extend(values)
    return cols


def _release_columns(calls: Sequence[_ReleaseCall]) -> list[list[Any]]:
    """The two arrays `hitl_release_batch` takes."""
    return [[c.thread_id for c in calls], [c.token for c in calls]]


def _warm_chain(thread_id: str, token: int | None) -> _ChainCall:
    """A chain of two checkpoints with blobs, a write and an inbox entry, releasing the lease:
    every statement of `hitl_commit_many` runs for it."""
    return _ChainCall(
        thread_id, "", token, True, [None, "1"], ["1", "2"], [None, "1"], ["", ""],
        ['{"a":"1"}', '{"a":"2"}'], [b"", b""], ["{}", "{}"],
        [1, 2], ["a", "a"], ["1", "2"], [b"", b""],
        [0, 1], ["t"], [0], ["a"], [b""], [""],
        [["i"], [""], ["n"], [b""], [""], [None], [None], [""]],
    )  # fmt: skip


async def _warm_up(conn: AnyConnection, q: Queries) -> None:
    """Run every statement that group commit sends (single and batched) once on `conn`, in a
    transaction rolled back at the end: a new server backend compiles the stored functions,
    plans their statements and loads the tables' metadata on first use (~20 ms of server CPU),
    which a burst of calls would otherwise pay on each connection the pool opens for it."""
    tag = uuid.uuid4().hex
    threads = [f"hitl-async warm-up {tag} {k}" for k in range(3)]
    acquires = [_AcquireCall(t, "warm-up", 60.0, "", "", None) for t in threads]
    tx = conn.transaction()
    await tx.start()
    try:
        for _ in range(2):  # a free thread, then one with a checkpoint to load
            first = _one(await conn.fetchrow(q.acquire_and_load, *acquires[0].args()), "warm-up")
            rows = await conn.fetch(q.acquire_and_load_batch, *_acquire_columns(acquires[1:]))
            tokens = [first["token"], *(r["token"] for r in rows)]
            if first["checkpoint_id"] is None:
                chains = [_warm_chain(t, token) for t, token in zip(threads, tokens, strict=True)]
                await conn.fetchrow(q.commit_many, *chains[0].args())
                await conn.fetch(q.commit_many_batch, *_chain_columns(chains[1:]))
        puts = [
            _PutWritesCall(t, "", "2", ["t"], [1], ["a"], [b""], [""], token, [[]] * 8)
            for t, token in zip(threads, tokens, strict=True)
        ]
        await conn.fetchrow(q.put_writes, *puts[0].args())
        await conn.fetch(q.put_writes_batch, *_put_writes_columns(puts[1:]))
        releases = [_ReleaseCall(t, token) for t, token in zip(threads, tokens, strict=True)]
        await conn.fetchrow(q.release_lease, *releases[0].args())
        await conn.fetch(q.release_batch, *_release_columns(releases[1:]))
    finally:
        await tx.rollback()


def _acquire_columns(calls: Sequence[_AcquireCall]) -> list[list[Any]]:
    """The six arrays `hitl_acquire_and_load_batch` takes."""
    return [
        [c.thread_id for c in calls],
        [c.owner for c in calls],
        [c.ttl for c in calls],
        [c.graph for c in calls],
        [c.ns for c in calls],
        [c.checkpoint_id for c in calls],
    ]


def _chain_columns(calls: Sequence[_ChainCall]) -> list[list[Any]]:
    """The 34 arrays `hitl_commit_many_batch` takes: per request, per checkpoint, blobs,
    writes and inbox entries, each request's elements located by (inclusive) end indices."""
    cols: list[list[Any]] = [[] for _ in range(34)]
    (thread, ns, lease, release, c_end, b_end, w_end, i_set, i_end) = cols[:9]
    ends = [0, 0, 0, 0]
    for c in calls:
        ends[0] += len(c.ids)
        ends[1] += len(c.blob_channels)
        ends[2] += len(c.write_tasks)
        thread.append(c.thread_id)
        ns.append(c.ns)
        lease.append(c.token)
        release.append(c.release)
        c_end.append(ends[0])
        b_end.append(ends[1])
        w_end.append(ends[2])
        i_set.append(c.inbox is not None)
        if c.inbox is not None:
            ends[3] += len(c.inbox[0])
            for col, values in zip(cols[26:34], c.inbox, strict=True):
                col.extend(values)
        i_end.append(ends[3])
        chained: tuple[list[Any], ...] = (
            c.expected,
            c.ids,
            c.parents,
            c.created,
            c.versions,
            c.headers,
            c.metadata,
            c.blob_ends,
            c.write_ends,
            c.blob_channels,
            c.blob_versions,
            c.blob_data,
            c.write_tasks,
            c.write_idxs,
            c.write_channels,
            c.write_data,
            c.write_paths,
        )
        for col, values in zip(cols[9:26], chained, strict=True):
            col.extend(values)
    return cols


@dataclass(slots=True)
class _LoopPool:
    """The pool of one event loop, its LISTEN connection (opened by the first wait), the task
    that closes both when that loop shuts down, and (with group commit) the batchers of
    `acquire_and_load`, `commit_many`, `put_writes` and `release_lease` calls made in that
    loop."""

    pool: asyncpg.Pool
    keeper: asyncio.Task[None] | None = None
    listener: Listener | None = None
    opening: asyncio.Task[Listener] | None = None  # the LISTEN connection being opened
    cold: bool = True  # its connections are still to be warmed up
    acquires: Batcher[_AcquireCall, asyncpg.Record] | None = None
    commits: Batcher[_ChainCall, asyncpg.Record] | None = None
    puts: Batcher[_PutWritesCall, asyncpg.Record] | None = None
    releases: Batcher[_ReleaseCall, asyncpg.Record] | None = None

    async def wait_idle(self, timeout: float) -> None:
        """Wait until every batch queued or in flight is answered, or `timeout` seconds (a
        batch still stuck then fails when the pool is closed under it; it is not cancelled,
        which its callers would take for their own cancellation)."""
        batchers = [
            b for b in (self.acquires, self.commits, self.puts, self.releases) if b is not None
        ]
        if batchers:
            idle = asyncio.gather(*(b.wait_idle() for b in batchers))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(idle), timeout)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _bools_as_ints(value: Any) -> Any:
    """A filter value with booleans as 0/1 at every depth, as `hitl_json_norm` maps metadata."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Mapping):
        return {k: _bools_as_ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_bools_as_ints(v) for v in value]
    return value


def _check_text(name: str, value: str) -> None:
    """An id PostgreSQL `text` can hold (no NUL, no lone surrogate; a thread id non-empty and
    of bounded length): `InvalidThreadIdError` up front instead of a server encoding error."""
    if name == "thread_id":
        check_id("thread id", value)
    else:
        check_id(name, value, empty_ok=True)


def _lease_token(thread_id: str, lease: Lease | None) -> int | None:
    """The token a fenced write checks, or None for an unfenced one."""
    if lease is None:
        return None
    if lease.thread_id != thread_id:
        raise ValueError(
            f"the lease is for thread {lease.thread_id!r}, not {thread_id!r}: a write is fenced "
            "by the lease of its own thread"
        )
    return lease.token


def _inbox_columns(thread_id: str, inbox: Sequence[InboxEntry] | None) -> list[list[Any] | None]:
    """The eight parallel arrays `hitl_set_inbox` takes (all None: leave the inbox as it is).

    A repeated interrupt id keeps its last entry (the table's key is thread and interrupt id).
    """
    if inbox is None:
        return [None] * 8
    entries: dict[str, InboxEntry] = {}
    for e in inbox:
        if e.thread_id != thread_id:
            raise ValueError(
                f"inbox entry {e.interrupt_id!r} is for thread {e.thread_id!r}, not "
                f"{thread_id!r}: a write replaces only its own thread's inbox"
            )
        _check_text("interrupt_id", e.interrupt_id)
        _check_text("node", e.node)
        entries[e.interrupt_id] = e
    rows = entries.values()
    return [
        [e.interrupt_id for e in rows],
        [e.checkpoint_ns for e in rows],
        [e.node for e in rows],
        [e.value for e in rows],
        [e.created_at for e in rows],
        [e.deadline for e in rows],
        [e.on_timeout for e in rows],
        [e.graph for e in rows],
    ]


def _inbox_entry(row: asyncpg.Record) -> InboxEntry:
    return checked_inbox_entry(dict(row.items()))


def _run_request(row: asyncpg.Record) -> RunRequest:
    return checked_request(dict(row.items()))


def _where(thread_id: str, checkpoint_ns: str) -> str:
    ns = f" (namespace {checkpoint_ns!r})" if checkpoint_ns else ""
    return f"thread {thread_id!r}{ns}"


def _loaded(thread_id: str, checkpoint_ns: str, row: asyncpg.Record) -> LoadedCheckpoint:
    record = CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=row["checkpoint_id"],
        parent_id=row["parent_id"],
        created_at=row["created_at"],
        channel_versions=checked_versions(thread_id, row["checkpoint_id"], row["channel_versions"]),
        header=row["header"],
        metadata=checked_metadata(thread_id, row["checkpoint_id"], row["metadata"]),
    )
    blobs = dict(zip(row["blob_channels"] or (), row["blob_data"] or (), strict=True))
    if len(blobs) != len(record.channel_versions):  # the query drops blobs that are not stored
        for channel, version in record.channel_versions.items():
            if channel not in blobs:
                raise SerializationError(
                    f"{_where(thread_id, checkpoint_ns)}, checkpoint {record.checkpoint_id!r}: "
                    f"no blob for channel {channel!r} at version {version!r}; the checkpoint "
                    "store is corrupt"
                )
    writes = [
        WriteRecord(task_id, idx, channel, data, path)
        for task_id, idx, channel, data, path in zip(
            row["task_ids"] or (),
            row["idxs"] or (),
            row["write_channels"] or (),
            row["write_data"] or (),
            row["paths"] or (),
            strict=True,
        )
    ]
    return LoadedCheckpoint(record, blobs, writes)


async def _keep(
    pools: dict[asyncio.AbstractEventLoop, _LoopPool],
    loop: asyncio.AbstractEventLoop,
    entry: _LoopPool,
) -> None:
    """Wait until cancelled (by `aclose()`, the saver's finalizer or the loop shutting down),
    then close the pool and the LISTEN connection of `loop`."""
    with contextlib.suppress(asyncio.CancelledError):
        await loop.create_future()
    if pools.get(loop) is entry:
        del pools[loop]
    await entry.wait_idle(_CLOSE_TIMEOUT)  # batches already queued still get their answer
    listener, entry.listener = entry.listener, None
    if listener is not None:
        await listener.close()
    await _close_pool(entry.pool)


def _release_pools(pools: dict[asyncio.AbstractEventLoop, _LoopPool], what: str, site: str) -> None:
    """The finalizer of a saver collected without `aclose()`: warn, then have every pool closed
    by its keeper in its own loop (or terminated, when that loop is gone)."""
    if not pools:
        return
    warn_unclosed(what, site)
    for loop, entry in list(pools.items()):
        pools.pop(loop, None)
        keeper = entry.keeper
        if keeper is not None and not loop.is_closed() and not keeper.done():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(keeper.cancel)
                continue
        if entry.listener is not None:
            entry.listener.terminate()
        with contextlib.suppress(Exception):
            entry.pool.terminate()


async def _open_listener(dsn: str, channels: Any, options: dict[str, Any]) -> Listener:
    return await Listener.open(dsn, channels, **options)


def _opened(
    pools: dict[asyncio.AbstractEventLoop, _LoopPool],
    loop: asyncio.AbstractEventLoop,
    entry: _LoopPool,
    task: asyncio.Task[Listener],
) -> None:
    """When the LISTEN connection is open: keep it (or close it, if its pool is gone)."""
    entry.opening = None
    if task.cancelled() or task.exception() is not None:
        return  # (the waiters get the error; the next wait tries again)
    listener = task.result()
    if pools.get(loop) is entry and entry.listener is None:
        entry.listener = listener
    else:
        listener.terminate()


async def _shielded(work: Coroutine[Any, Any, _T]) -> _T:
    """Run `work` in a task of its own that the caller's cancellation does not interrupt (the
    caller stops waiting; the work finishes, and its error, if any, is not reported twice)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _one(row: asyncpg.Record | None, thread_id: str | None, what: str = "") -> asyncpg.Record:
    """The row a driver statement always returns (its functions return one row per call). None
    means the schema's functions are not the driver's (damaged or replaced by hand): a
    `CorruptRecordError` naming the thread, never `TypeError: 'NoneType' is not subscriptable`
    (or nothing at all: an `assert` vanishes under `python -O`)."""
    if row is None:
        raise CorruptRecordError(
            thread_id,
            what or "the reply of a driver statement",
            "the statement returned no row: the schema's hitl_* functions are not the ones this "
            "driver installs (damaged or replaced); run setup() on a fresh schema",
        )
    return row


def _forget_parent(saver: PostgresSaver) -> None:
    """In a forked child: drop the parent's pools (their sockets are the parent's sessions:
    never closed here) so the child connects afresh on first use."""
    forked_away.append(dict(saver._pools))
    saver._pools.clear()
    saver._locks.clear()


async def _close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully, or terminate when that fails or takes too long."""
    try:
        await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT)
    except Exception:
        with contextlib.suppress(Exception):
            pool.terminate()


class PostgresSaver(BaseSaver, LeaseStore, InboxStore, RunQueueStore, ChangeFeed, PostgresCache):
    """Checkpoints in PostgreSQL tables `threads`, `checkpoints`, `blobs` and `writes` of `schema`,
    coordination in `leases`, `inbox` and `runs`.

    `dsn` is a libpq-style URL (`postgresql://user:password@host:5432/database`). Options:
    `schema` (created if missing), pool `min_size`/`max_size`, `command_timeout` and
    `connect_timeout` in seconds, `statement_cache_size` (asyncpg's default when None),
    `pgbouncer=True` for PgBouncer in transaction mode (no named prepared statements),
    `listen_dsn` (where the LISTEN connection goes; default `dsn` - point it at the server itself
    behind a transaction-mode PgBouncer, which cannot deliver notifications), and `setup` (run
    migrations automatically on first use; `setup()` always can).

    Group commit: with `group_commit=True` (the default), concurrent `acquire_and_load` calls
    of one event loop share a round trip, and so do concurrent `commit_many`, `put_writes` and
    `release_lease` calls (see the module notes); `batches_in_flight` is how many batches of
    each kind may be in flight at once (a call finding fewer goes out alone, at once) and
    `max_batch` how many calls one batch carries at most. `group_commit=False` sends every call
    on its own. `warm_connections` (default: 2 x `batches_in_flight` with group commit, else 0)
    is how many connections a new pool opens and warms up at once (see `_warm_up`), so that a
    burst of calls does not pay a cold server backend per connection it needs.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout: float | None = None,
        connect_timeout: float | None = None,
        statement_cache_size: int | None = None,
        pgbouncer: bool = False,
        listen_dsn: str | None = None,
        setup: bool = True,
        group_commit: bool = True,
        batches_in_flight: int = 2,
        max_batch: int = 64,
        warm_connections: int | None = None,
    ) -> None:
        quoted = quote_schema(schema)
        if batches_in_flight < 1 or max_batch < 1:
            raise ValueError(
                "group commit needs batches_in_flight >= 1 and max_batch >= 1, got "
                f"batches_in_flight={batches_in_flight}, max_batch={max_batch}"
            )
        self._warm_by_default = warm_connections is None
        if warm_connections is None:
            warm_connections = 2 * batches_in_flight if group_commit else 0
        if warm_connections < 0:
            raise ValueError(f"warm_connections must be >= 0, got {warm_connections}")
        if min_size < 0 or max_size < 1 or min_size > max_size:
            raise ValueError(
                f"pool sizes must satisfy 0 <= min_size <= max_size and max_size >= 1, got "
                f"min_size={min_size}, max_size={max_size}"
            )
        if pgbouncer:
            if statement_cache_size not in (None, 0):
                raise ValueError(
                    "pgbouncer=True needs statement_cache_size=0 (named prepared statements do "
                    f"not survive PgBouncer transaction pooling), got {statement_cache_size}"
                )
            statement_cache_size = 0
        if statement_cache_size is not None and statement_cache_size < 0:
            raise ValueError(f"statement_cache_size must be >= 0, got {statement_cache_size}")
        self.dsn = dsn
        self.listen_dsn = listen_dsn or dsn
        self.schema = schema
        self.pgbouncer = pgbouncer
        self.auto_setup = setup
        self.group_commit = group_commit
        self.batches_in_flight = batches_in_flight
        self.max_batch = max_batch
        self.warm_connections = min(warm_connections, max_size)
        self.batch_fallbacks = 0
        """How many batches raised and were sent again one request at a time (for tests)."""
        self.pool_options: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "command_timeout": command_timeout,
            "connection_class": _Connection,
        }
        if connect_timeout is not None:
            self.pool_options["timeout"] = connect_timeout
        if statement_cache_size is not None:
            self.pool_options["statement_cache_size"] = statement_cache_size
        self.listen_options: dict[str, Any] = {}
        if connect_timeout is not None:
            self.listen_options["timeout"] = connect_timeout
        self.channels = channels(schema)
        self.applied_migrations: list[int] = []
        self._q = Queries(quoted)
        self._pools: dict[asyncio.AbstractEventLoop, _LoopPool] = {}
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._migrated = False
        self._closed = False
        self._pending_releases = PendingReleases()
        self._finalizer = weakref.finalize(
            self, _release_pools, self._pools, f"PostgresSaver(schema={schema!r})", creation_site()
        )
        self._finalizer.atexit = False
        after_fork_in_child(self, _forget_parent)

    # -- connection management -------------------------------------------------------------

    def _lock_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks.setdefault(loop, asyncio.Lock())
        return lock

    def _drop_closed_loops(self) -> None:
        """Forget pools of event loops that were closed (their sockets go with them)."""
        for loop in [lp for lp in self._pools if lp.is_closed()]:
            entry = self._pools.pop(loop)
            if entry.listener is not None:
                entry.listener.terminate()
            with contextlib.suppress(Exception):
                entry.pool.terminate()  # usually fails: the loop is gone
        for loop in [lp for lp in self._locks if lp.is_closed()]:
            self._locks.pop(loop, None)

    async def _pool(self) -> asyncpg.Pool:
        """The pool of the running event loop, created (and the schema migrated) on first use."""
        return (await self._entry()).pool

    async def _entry(self) -> _LoopPool:
        """The pool and batchers of the running event loop, created (and the schema migrated)
        on first use."""
        if self._closed:
            raise RuntimeError("this PostgresSaver is closed")
        loop = asyncio.get_running_loop()
        entry = self._pools.get(loop)
        if entry is not None and (self._migrated or not self.auto_setup):
            return entry
        async with self._lock_for(loop):
            if self._closed:
                raise RuntimeError("this PostgresSaver is closed")
            entry = self._pools.get(loop)
            if entry is None:
                self._drop_closed_loops()
                # Shielded too: a caller cancelled mid-connect leaves the pool to be kept (and
                # closed by its keeper), never a half-open connection nobody owns.
                entry = await _shielded(self._new_entry(loop))
            # Shielded: a caller cancelled meanwhile must not interrupt a migration or a
            # warm-up mid-statement (its connection would go back to the pool mid-transaction).
            if self.auto_setup and not self._migrated:
                await _shielded(self._migrate(entry.pool))
            if entry.cold:
                entry.cold = False
                # a sync-API thread's own loop runs one run at a time: no burst to warm up for
                if not (self._warm_by_default and serves_one_caller(loop)):
                    await _shielded(self._warm(entry.pool))
        return entry

    async def _new_entry(self, loop: asyncio.AbstractEventLoop) -> _LoopPool:
        """Create the pool of `loop` with its batchers and keeper, and register it."""
        pool = await asyncpg.create_pool(self.dsn, **self.pool_options)
        if self._closed:  # aclose() ran meanwhile
            await _close_pool(pool)
            raise RuntimeError("this PostgresSaver is closed")
        entry = _LoopPool(pool)
        if self.group_commit:
            entry.acquires = self._batcher(
                pool, self._q.acquire_and_load, self._q.acquire_and_load_batch,
                _acquire_columns,
            )  # fmt: skip
            entry.commits = self._batcher(
                pool, self._q.commit_many, self._q.commit_many_batch, _chain_columns
            )
            entry.puts = self._batcher(
                pool, self._q.put_writes, self._q.put_writes_batch, _put_writes_columns
            )
            entry.releases = self._batcher(
                pool, self._q.release_lease, self._q.release_batch, _release_columns
            )
        entry.keeper = loop.create_task(  # (it holds no reference to the saver)
            _keep(self._pools, loop, entry), name="hitl-async-postgres pool keeper"
        )
        self._pools[loop] = entry
        return entry

    async def _warm(self, pool: asyncpg.Pool) -> None:
        """Open `warm_connections` connections and warm each up (best effort: a failure, e.g. a
        schema older than migration 6 with `setup=False`, only leaves them cold). Each is held
        while it warms up, so the others are opened next to it."""
        if self.warm_connections <= 0:
            return

        async def warm_one() -> None:
            async with pool.acquire() as conn:
                await _warm_up(conn, self._q)

        results = await asyncio.gather(
            *(warm_one() for _ in range(self.warm_connections)), return_exceptions=True
        )
        for exc in results:
            if isinstance(exc, BaseException):
                log.debug("could not warm up a connection: %r", exc)

    def _batcher(
        self,
        pool: asyncpg.Pool,
        single: str,
        batched: str,
        columns: Callable[[list[Any]], list[list[Any]]],
    ) -> Batcher[Any, asyncpg.Record]:
        """A batcher sending calls of one kind on `pool`: alone by the `single` statement, or
        several by the `batched` one with their `columns`."""

        saver = weakref.ref(self)  # (a batcher must not keep a dropped saver alive)

        async def send(calls: list[Any]) -> list[asyncpg.Record | BaseException]:
            live = saver()
            if live is None:
                raise RuntimeError("this PostgresSaver was garbage-collected")
            return await live._send_batch(pool, single, batched, columns, calls)

        return Batcher(send, concurrency=self.batches_in_flight, max_batch=self.max_batch)

    async def _send_batch(
        self,
        pool: asyncpg.Pool,
        single: str,
        batched: str,
        columns: Callable[[list[Any]], list[list[Any]]],
        calls: list[Any],
    ) -> list[asyncpg.Record | BaseException]:
        """One row (or error) per call, in order. A lone call goes by the single-request
        statement, as without group commit. Several go in one call of the batch function, sorted
        by thread and namespace (the lock order of every batch) and mapped back by `ord`. A batch
        that raises was rolled back whole: its calls go again one by one, each with its own
        outcome - unless its connection failed (then it may have committed, and every caller
        gets that error, as after a lost reply)."""
        if len(calls) == 1:
            return [_one(await pool.fetchrow(single, *calls[0].args()), calls[0].thread_id)]
        order = sorted(range(len(calls)), key=lambda k: calls[k].key)
        try:
            rows = await pool.fetch(batched, *columns([calls[k] for k in order]))
        except Exception as exc:
            if _unavailable(self.dsn, exc) is not None:
                raise
            self.batch_fallbacks += 1
            return await self._one_by_one(pool, single, calls)
        out: list[asyncpg.Record | BaseException | None] = [None] * len(calls)
        for row in rows:
            out[order[row["ord"] - 1]] = row
        if any(row is None for row in out):
            raise RuntimeError(f"a batch of {len(calls)} calls got {len(rows)} rows back")
        return out  # type: ignore[return-value]

    async def _one_by_one(
        self, pool: asyncpg.Pool, single: str, calls: list[Any]
    ) -> list[asyncpg.Record | BaseException]:
        """Each call alone, in order: a failure is that call's outcome only."""
        out: list[asyncpg.Record | BaseException] = []
        for call in calls:
            try:
                out.append(_one(await pool.fetchrow(single, *call.args()), call.thread_id))
            except Exception as exc:
                out.append(exc)
        return out

    async def _listener(self) -> Listener:
        """The LISTEN connection of the running event loop, opened (again) when needed.

        The connection is opened by a task of its own that the callers await shielded: a
        waiter cancelled mid-connect (a timeout, a cancel scope) never aborts the half-open
        connection, which asyncpg would report as an unretrieved "unexpected
        connection_lost()"; the next waiter gets it."""
        await self._pool()
        loop = asyncio.get_running_loop()
        entry = self._pools.get(loop)
        if entry is not None and entry.listener is not None and entry.listener.alive:
            return entry.listener
        async with self._lock_for(loop):
            entry = self._pools.get(loop)
            if self._closed or entry is None:
                raise RuntimeError("this PostgresSaver is closed")
            if entry.listener is not None and entry.listener.alive:
                return entry.listener
            if entry.listener is not None:
                entry.listener.terminate()
                entry.listener = None
            if entry.opening is None:
                opening = loop.create_task(
                    _open_listener(self.listen_dsn, self.channels, self.listen_options),
                    name="hitl-async-postgres LISTEN",
                )
                opening.add_done_callback(functools.partial(_opened, self._pools, loop, entry))
                entry.opening = opening
            opening = entry.opening
        listener = await asyncio.shield(opening)
        if self._closed or self._pools.get(loop) is not entry:  # closed meanwhile
            raise RuntimeError("this PostgresSaver is closed")
        return listener

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            self.applied_migrations = await migrate(conn, self.schema)
        self._migrated = True

    async def setup(self) -> None:
        """Create the schema, tables and functions if needed (versioned; idempotent)."""
        pool = await self._pool()
        if not self._migrated:
            async with self._lock_for(asyncio.get_running_loop()):
                if not self._migrated:
                    await _shielded(self._migrate(pool))

    async def destroy(self) -> None:
        """Drop the schema with everything in it (in `public`: only the driver's objects)."""
        pool = await self._pool()
        async with pool.acquire() as conn:
            await _destroy_schema(conn, self.schema)
        self._migrated = False

    async def aclose(self) -> None:
        """Close the pools and LISTEN connections of every event loop this saver used;
        idempotent."""
        self._closed = True
        running = asyncio.get_running_loop()
        entries = list(self._pools.items())
        self._pools.clear()
        self._locks.clear()
        for loop, entry in entries:
            keeper = entry.keeper
            if loop is running and keeper is not None:
                keeper.cancel()
                await keeper
            elif loop.is_running() and keeper is not None:
                loop.call_soon_threadsafe(keeper.cancel)  # it closes the pool in its own loop
            else:
                if entry.listener is not None:
                    entry.listener.terminate()
                with contextlib.suppress(Exception):
                    entry.pool.terminate()

    # -- the driver protocol ---------------------------------------------------------------

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
        _check_text("thread_id", record.thread_id)
        _check_text("checkpoint_ns", record.checkpoint_ns)
        token = _lease_token(record.thread_id, lease)
        inbox_columns = _inbox_columns(record.thread_id, inbox)
        blob_map = {(b.channel, b.version): b.data for b in blobs}  # last one wins, like memory
        write_map = {(w.task_id, w.idx): w for w in writes}
        pool = await self._pool()
        row = _one(
            await pool.fetchrow(
                self._q.commit,
                record.thread_id,
                record.checkpoint_ns,
                expected_head,
                record.checkpoint_id,
                record.parent_id,
                record.created_at,
                _dumps(dict(record.channel_versions)),
                record.header,
                _dumps(dict(record.metadata)),
                [channel for channel, _ in blob_map],
                [version for _, version in blob_map],
                list(blob_map.values()),
                [w.task_id for w in write_map.values()],
                [w.idx for w in write_map.values()],
                [w.channel for w in write_map.values()],
                [w.data for w in write_map.values()],
                [w.task_path for w in write_map.values()],
                token,
                *inbox_columns,
            ),
            record.thread_id,
        )
        if not row["lease_ok"]:
            assert lease is not None
            raise LeaseLostError(record.thread_id, lease.token, row["lease_current"])
        if not row["ok"]:
            if row["actual"] == expected_head:  # the head matched: the id is already stored
                raise CheckpointConflictError.duplicate(
                    record.thread_id,
                    record.checkpoint_ns,
                    record.checkpoint_id,
                    expected_head,
                    expected_head,
                )
            raise CheckpointConflictError(
                record.thread_id, record.checkpoint_ns, expected_head, row["actual"]
            )

    async def commit_many(
        self, commits: Sequence[Commit], *, lease: Lease | None = None, release: bool = False
    ) -> None:
        """The chain in one call of `hitl_commit_many`, all or nothing: the lease is checked
        once, then the head, each link and each id, before anything is written; the first
        failure is raised (as `commit()` one by one would raise it) with nothing stored. With
        `release`, the lease is released in the same transaction once the chain is written.
        A chain spanning namespaces goes commit by commit (the engine never writes one)."""
        if not commits:
            if release and lease is not None:
                await self.release_lease(lease)
            return
        first = commits[0].record
        thread_id, ns = first.thread_id, first.checkpoint_ns
        if any(c.record.thread_id != thread_id or c.record.checkpoint_ns != ns for c in commits):
            await super().commit_many(commits, lease=lease, release=release)
            return
        _check_text("thread_id", thread_id)
        _check_text("checkpoint_ns", ns)
        token = _lease_token(thread_id, lease)
        inbox: Sequence[InboxEntry] | None = None
        for c in commits:  # the last replacement is the one that stays; all must be valid
            if c.inbox is not None:
                _inbox_columns(thread_id, c.inbox)
                inbox = c.inbox
        records = [c.record for c in commits]
        blob_rows: list[tuple[str, str, bytes]] = []
        blob_ends: list[int] = []
        write_rows: list[WriteRecord] = []
        write_ends: list[int] = []
        for c in commits:
            blob_map = {(b.channel, b.version): b.data for b in c.blobs}  # last one wins
            blob_rows += [(channel, version, data) for (channel, version), data in blob_map.items()]
            blob_ends.append(len(blob_rows))
            write_rows += {(w.task_id, w.idx): w for w in c.writes}.values()
            write_ends.append(len(write_rows))
        call = _ChainCall(
            thread_id,
            ns,
            token,
            release and lease is not None,
            [c.expected_head for c in commits],
            [r.checkpoint_id for r in records],
            [r.parent_id for r in records],
            [r.created_at for r in records],
            [_dumps(dict(r.channel_versions)) for r in records],
            [r.header for r in records],
            [_dumps(dict(r.metadata)) for r in records],
            blob_ends,
            [b[0] for b in blob_rows],
            [b[1] for b in blob_rows],
            [b[2] for b in blob_rows],
            write_ends,
            [w.task_id for w in write_rows],
            [w.idx for w in write_rows],
            [w.channel for w in write_rows],
            [w.data for w in write_rows],
            [w.task_path for w in write_rows],
            None if inbox is None else _inbox_columns(thread_id, inbox),  # type: ignore[arg-type]
        )
        entry = await self._entry()
        if entry.commits is not None:
            row = await entry.commits.submit(call)
        else:
            row = _one(await entry.pool.fetchrow(self._q.commit_many, *call.args()), thread_id)
        if not row["lease_ok"]:
            assert lease is not None
            raise LeaseLostError(thread_id, lease.token, row["lease_current"])
        if not row["ok"]:
            failed = commits[row["failed"]]
            if row["actual"] == failed.expected_head:  # the head matched: the id is taken
                raise CheckpointConflictError.duplicate(
                    failed.record.thread_id,
                    failed.record.checkpoint_ns,
                    failed.record.checkpoint_id,
                    failed.expected_head,
                    failed.expected_head,
                )
            raise CheckpointConflictError(thread_id, ns, failed.expected_head, row["actual"])

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
        _check_text("thread_id", thread_id)
        _check_text("checkpoint_ns", checkpoint_ns)
        if not writes and lease is None and inbox is None:
            return
        token = _lease_token(thread_id, lease)
        write_map = {(w.task_id, w.idx): w for w in writes}
        call = _PutWritesCall(
            thread_id,
            checkpoint_ns,
            checkpoint_id,
            [w.task_id for w in write_map.values()],
            [w.idx for w in write_map.values()],
            [w.channel for w in write_map.values()],
            [w.data for w in write_map.values()],
            [w.task_path for w in write_map.values()],
            token,
            None if inbox is None else _inbox_columns(thread_id, inbox),  # type: ignore[arg-type]
        )
        entry = await self._entry()
        if entry.puts is not None:
            row = await entry.puts.submit(call)
        else:
            row = _one(await entry.pool.fetchrow(self._q.put_writes, *call.args()), thread_id)
        if not row["lease_ok"]:
            assert lease is not None
            raise LeaseLostError(thread_id, lease.token, row["lease_current"])

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        _check_text("thread_id", thread_id)
        _check_text("checkpoint_ns", checkpoint_ns)
        pool = await self._pool()
        if checkpoint_id:
            _check_text("checkpoint_id", checkpoint_id)
            row = await pool.fetchrow(self._q.load_id, thread_id, checkpoint_ns, checkpoint_id)
        else:
            row = await pool.fetchrow(self._q.load_head, thread_id, checkpoint_ns)
        return None if row is None else _loaded(thread_id, checkpoint_ns, row)

    async def history(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        _check_text("thread_id", thread_id)
        _check_text("checkpoint_ns", checkpoint_ns)
        args: list[Any] = [thread_id, checkpoint_ns, None if limit is None else max(limit, 0)]
        if before is not None:
            _check_text("before", before)
            args.append(before)
        exact = {k: v for k, v in (filter or {}).items() if v is None or isinstance(v, str)}
        loose = {k: _bools_as_ints(v) for k, v in (filter or {}).items() if k not in exact}
        if exact:
            args.append(_dumps(exact))
        if loose:
            args.append(_dumps(loose))
        sql = self._q.history(before=before is not None, exact=bool(exact), loose=bool(loose))
        pool = await self._pool()
        rows = await pool.fetch(sql, *args)
        return [_loaded(thread_id, checkpoint_ns, row) for row in rows]

    async def delete_thread(self, thread_id: str) -> None:
        _check_text("thread_id", thread_id)
        pool = await self._pool()
        await pool.execute(self._q.delete_thread, thread_id)

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        _check_text("thread_id", thread_id)
        if keep_last is None and newer_than is None:
            return 0
        cutoff = prune_cutoff(keep_last, newer_than)
        pool = await self._pool()
        removed = await pool.fetchval(self._q.prune, thread_id, keep_last, cutoff)
        return int(removed)

    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        pool = await self._pool()
        rows = await pool.fetch(self._q.list_threads, None if limit is None else max(limit, 0))
        return [row["thread_id"] for row in rows]

    # -- coordination: leases ----------------------------------------------------------------

    async def acquire_lease(
        self, thread_id: str, owner: str, ttl: float, *, graph: str = ""
    ) -> Lease:
        """One call of `hitl_acquire`: an upsert that takes the lease only if it is free,
        released or expired (the row lock makes concurrent acquires queue up and all but one
        find it taken), naming the holder when it is taken."""
        _check_text("thread_id", thread_id)
        _check_text("owner", owner)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        pool = await self._pool()
        row = _one(
            await pool.fetchrow(self._q.acquire_lease, thread_id, owner, ttl, graph), thread_id
        )
        if row["token"] is None:
            raise ThreadBusyError(thread_id, row["holder"], row["holder_expires"])
        return Lease(thread_id, owner, row["token"], row["expires_at"], graph)

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
        """One call of `hitl_acquire_and_load`: `acquire_lease`, then (having the lease) the
        head or `checkpoint_id` as `load` returns it, read after the lease was taken."""
        _check_text("thread_id", thread_id)
        _check_text("owner", owner)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        _check_text("checkpoint_ns", checkpoint_ns)
        if checkpoint_id:
            _check_text("checkpoint_id", checkpoint_id)
        call = _AcquireCall(thread_id, owner, ttl, graph, checkpoint_ns, checkpoint_id or None)
        entry = await self._entry()
        if entry.acquires is not None:
            row = await entry.acquires.submit(call)
        else:
            row = _one(await entry.pool.fetchrow(self._q.acquire_and_load, *call.args()), thread_id)
        if row["token"] is None:
            raise ThreadBusyError(thread_id, row["holder"], row["holder_expires"])
        lease = Lease(thread_id, owner, row["token"], row["expires_at"], graph)
        if row["checkpoint_id"] is None:
            return lease, None
        return lease, _loaded(thread_id, checkpoint_ns, row)

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        pool = await self._pool()
        row = _one(
            await pool.fetchrow(self._q.renew_lease, lease.thread_id, lease.token, ttl),
            lease.thread_id,
        )
        if row["expires_at"] is None:
            raise LeaseLostError(lease.thread_id, lease.token, row["current"])
        return Lease(lease.thread_id, row["owner"], lease.token, row["expires_at"], row["graph"])

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up if its token is still the thread's; if the server cannot be
        reached, it is released again before this saver next acquires the thread."""
        try:
            await self._release_lease_once(lease)
        except Exception:
            self._pending_releases.failed(lease)
            raise

    async def _release_lease_once(self, lease: Lease) -> None:
        call = _ReleaseCall(lease.thread_id, lease.token)
        entry = await self._entry()
        if entry.releases is not None:
            await entry.releases.submit(call)
        else:
            await entry.pool.fetchrow(self._q.release_lease, *call.args())

    async def expired_leases(self, *, graph: str | None = None, limit: int = 100) -> list[Lease]:
        pool = await self._pool()
        rows = await pool.fetch(self._q.expired_leases, graph, max(limit, 0))
        return [
            Lease(r["thread_id"], r["owner"], r["token"], r["expires_at"], r["graph"]) for r in rows
        ]

    # -- coordination: the inbox -------------------------------------------------------------

    async def list_inbox(self, query: InboxQuery = InboxQuery()) -> list[InboxEntry]:  # noqa: B008
        """One index-ordered read of the `inbox` table (keyset pagination on `after`)."""
        thread_id, node, graph = query.thread_id, query.node, query.graph
        due_before, after = query.due_before, query.after
        args: list[Any] = [max(query.limit, 0)]
        args += [v for v in (thread_id, node, graph) if v is not None]
        if due_before is not None:
            args.append(due_before)
        if after is not None:
            args += list(after)
        sql = self._q.list_inbox(
            thread=thread_id is not None,
            node=node is not None,
            graph=graph is not None,
            due=due_before is not None,
            after=after is not None,
        )
        pool = await self._pool()
        return [_inbox_entry(row) for row in await pool.fetch(sql, *args)]

    # -- coordination: the run queue ---------------------------------------------------------

    async def enqueue(self, request: RunRequest) -> None:
        """Insert the request and NOTIFY its queue, in one statement; `ValueError` if its id is
        taken."""
        _check_text("run request id", request.id)
        _check_text("queue", request.queue)
        _check_text("thread_id", request.thread_id)
        pool = await self._pool()
        rows = await pool.fetch(
            self._q.enqueue,
            request.id,
            request.queue,
            request.thread_id,
            request.payload,
            request.status,
            request.created_at,
            request.owner,
            request.claim_expires,
            request.attempts,
            request.result,
            request.error,
        )
        if not rows:
            raise ValueError(f"run request {request.id!r} already exists")

    async def claim_request(self, queue: str, owner: str, ttl: float) -> RunRequest | None:
        """One call of `hitl_claim` (see migration 4): never the same request twice, never two
        running requests of one thread."""
        pool = await self._pool()
        row = await pool.fetchrow(self._q.claim, queue, owner, ttl)
        return None if row is None else _run_request(row)

    async def renew_claim(self, request_id: str, owner: str, ttl: float) -> bool:
        pool = await self._pool()
        return await pool.fetchval(self._q.renew_claim, request_id, owner, ttl) is not None

    async def finish_request(
        self,
        request_id: str,
        owner: str | None,
        status: str,
        *,
        result: bytes | None = None,
        error: str | None = None,
    ) -> bool:
        if status not in _FINAL_STATUSES:
            raise ValueError(
                f"cannot finish run request {request_id!r} with status {status!r}: use one of "
                f"{sorted(_FINAL_STATUSES)}"
            )
        pool = await self._pool()
        row = _one(
            await pool.fetchrow(self._q.finish_request, request_id, owner, status, result, error),
            None,
            f"finishing run request {request_id!r}",
        )
        return bool(row["changed"])

    async def get_request(self, request_id: str) -> RunRequest | None:
        pool = await self._pool()
        row = await pool.fetchrow(self._q.get_request, request_id)
        return None if row is None else _run_request(row)

    async def list_requests(self, query: RunQuery = RunQuery()) -> list[RunRequest]:  # noqa: B008
        """A page of requests, newest first; damaged rows listed with `damaged` set."""
        if query.limit <= 0:
            return []
        args: list[Any] = [query.limit]
        args += [v for v in (query.queue, query.thread_id, query.status) if v is not None]
        if query.before is not None:
            args += list(query.before)
        sql = self._q.list_requests(
            queue=query.queue is not None,
            thread=query.thread_id is not None,
            status=query.status is not None,
            before=query.before is not None,
        )
        pool = await self._pool()
        rows = await pool.fetch(sql, *args)
        return [checked_request(dict(row.items()), lenient=True) for row in rows]

    # -- coordination: waiting ---------------------------------------------------------------

    async def wait_for_work(self, queue: str, timeout: float) -> None:
        """Listen first, then look: a request queued in between is found by the look, one
        queued later by the notification."""
        listener = await self._listener()
        deadline = time.monotonic() + timeout
        with listener.waiting(self.channels.queue, queue) as event:
            pool = await self._pool()
            if await pool.fetchval(self._q.runnable, queue):
                return
            with anyio.move_on_after(deadline - time.monotonic()):
                await event.wait()

    async def wait_for_change(self, thread_id: str, timeout: float) -> None:
        listener = await self._listener()
        with listener.waiting(self.channels.change, thread_id) as event:
            with anyio.move_on_after(timeout):
                await event.wait()


def _unavailable(dsn: str, exc: Exception) -> StoreUnavailableError | None:
    """`StoreUnavailableError` for a failure of the server or the connection (dropped, killed,
    refused, timed out, the server shutting down or starting up, its disk full, read-only);
    None for any other error (SQL, data, programming errors pass through unchanged)."""
    if isinstance(exc, HitlError):
        return None
    transient = True
    if isinstance(exc, asyncpg.PostgresConnectionError):  # SQLSTATE 08: connection exception
        cause = "the connection to the server broke"
    elif isinstance(
        exc,
        asyncpg.AdminShutdownError | asyncpg.CrashShutdownError | asyncpg.CannotConnectNowError,
    ):
        cause = "the server terminated the connection, is shutting down or is starting up"
    elif isinstance(exc, asyncpg.TooManyConnectionsError):
        cause = "the server has no connection slot free"
    elif isinstance(exc, asyncpg.DiskFullError):
        cause, transient = "the server's disk is full", False
    elif isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        cause, transient = "the server only accepts reads (a standby, or read-only)", False
    elif (
        isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc) and "pool" not in str(exc)
    ):
        cause = "the connection was closed"
    elif isinstance(exc, asyncpg.InternalClientError) and "cannot switch to state" in str(exc):
        # asyncpg's state after the server closed an idle connection (pg_terminate_backend, a
        # restart) and before the pool noticed; raised before the query is sent.
        cause = "the connection broke while idle"
    elif isinstance(exc, TimeoutError):
        cause = "the server did not answer in time"
    elif isinstance(exc, OSError):
        cause = "the server cannot be reached"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):  # 3D000, at connect
        cause, transient = _no_database(dsn), False
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):  # 28000, 28P01
        cause = "the server refused the login: check the user and password in the URL"
        transient = False
    else:
        return None
    parts = urlsplit(dsn)
    where = f"PostgreSQL {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return StoreUnavailableError(where, f"{cause} ({detail})", transient=transient)


def _no_database(dsn: str) -> str:
    """What to say when the URL's database does not exist: its name and how to create it."""
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    name = parts.path.lstrip("/") or user
    host = parts.hostname or "localhost"
    return (
        f"database {name!r} does not exist on {host}:{parts.port or 5432}; create it "
        f"(`createdb -h {host} -p {parts.port or 5432} -U {user} {name}`, or CREATE DATABASE in "
        "psql) or fix the database name in the URL"
    )


# What the server says when the schema (or its tables, or functions) was dropped under us.
_GONE = (
    asyncpg.UndefinedTableError,
    asyncpg.InvalidSchemaNameError,
    asyncpg.UndefinedFunctionError,
)


def _where_dsn(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def _mapped(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(self: PostgresSaver, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except _GONE as exc:
            if not self._migrated:
                raise
            raise StoreLostError(
                f"PostgreSQL schema {self.schema!r} ({_where_dsn(self.dsn)})",
                "its tables or functions were dropped while this saver was using it "
                f"({type(exc).__name__}: {exc})",
            ) from exc
        except Exception as exc:
            mapped = _unavailable(self.dsn, exc)
            if mapped is None:
                raise
            raise mapped from exc

    return call


# Every store call raises `StoreUnavailableError` when the server or the connection fails. The
# pool replaces a broken connection by itself, so a retry (the engine's) gets a fresh one.
for _name in (
    "setup",
    "destroy",
    "commit",
    "commit_many",
    "put_writes",
    "load",
    "history",
    "delete_thread",
    "prune",
    "list_threads",
    "acquire_lease",
    "acquire_and_load",
    "renew_lease",
    "release_lease",
    "expired_leases",
    "list_inbox",
    "enqueue",
    "claim_request",
    "renew_claim",
    "finish_request",
    "get_request",
    "list_requests",
    "wait_for_work",
    "wait_for_change",
):
    setattr(PostgresSaver, _name, _mapped(getattr(PostgresSaver, _name)))
del _name


def from_url(url: str, **options: Any) -> PostgresSaver:
    """Entry point for `hitl_async.connect("postgresql://...", **options)`.

    Options may also be given in the URL's query string; keyword options win.
    """
    dsn, url_options = split_url(url)
    return PostgresSaver(dsn, **{**url_options, **options})
