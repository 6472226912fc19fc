"""The calls group commit batches (`acquire_and_load`, `commit_many`, `put_writes`,
`release_lease`): each one's arguments, the parallel arrays a batch of them is sent as, and
`new_batcher`, which sends a loop's calls of one kind alone or together (see `saver`'s notes)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from hitl_async.checkpoint.batching import Batcher
from hitl_async_postgres._failures import unavailable
from hitl_async_postgres._rows import one

__all__ = [
    "AcquireCall",
    "BatchOwner",
    "ChainCall",
    "PutWritesCall",
    "ReleaseCall",
    "acquire_columns",
    "chain_columns",
    "new_batcher",
    "put_writes_columns",
    "release_columns",
]


@dataclass(frozen=True, slots=True)
class AcquireCall:
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
class ChainCall:
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
class PutWritesCall:
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
class ReleaseCall:
    """One `release_lease`."""

    thread_id: str
    token: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.thread_id, "")

    def args(self) -> tuple[Any, ...]:
        return (self.thread_id, self.token)


def put_writes_columns(calls: Sequence[PutWritesCall]) -> list[list[Any]]:
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


def release_columns(calls: Sequence[ReleaseCall]) -> list[list[Any]]:
    """The two arrays `hitl_release_batch` takes."""
    return [[c.thread_id for c in calls], [c.token for c in calls]]


def acquire_columns(calls: Sequence[AcquireCall]) -> list[list[Any]]:
    """The six arrays `hitl_acquire_and_load_batch` takes."""
    return [
        [c.thread_id for c in calls],
        [c.owner for c in calls],
        [c.ttl for c in calls],
        [c.graph for c in calls],
        [c.ns for c in calls],
        [c.checkpoint_id for c in calls],
    ]


def chain_columns(calls: Sequence[ChainCall]) -> list[list[Any]]:
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


class BatchOwner(Protocol):
    """What a batcher needs of its saver: where it sends, how it batches, and the count of
    batches that raised and went again one request at a time."""

    dsn: str
    batches_in_flight: int
    max_batch: int
    batch_fallbacks: int


def new_batcher(
    owner: BatchOwner,
    pool: asyncpg.Pool,
    single: str,
    batched: str,
    columns: Callable[[list[Any]], list[list[Any]]],
) -> Batcher[Any, asyncpg.Record]:
    """A batcher sending calls of one kind on `pool`: alone by the `single` statement, or
    several by the `batched` one with their `columns`."""

    saver = weakref.ref(owner)  # (a batcher must not keep a dropped saver alive)

    async def send(calls: list[Any]) -> list[asyncpg.Record | BaseException]:
        live = saver()
        if live is None:
            raise RuntimeError("this PostgresSaver was garbage-collected")
        return await send_batch(live, pool, single, batched, columns, calls)

    return Batcher(send, concurrency=owner.batches_in_flight, max_batch=owner.max_batch)


async def send_batch(
    owner: BatchOwner,
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
        return [one(await pool.fetchrow(single, *calls[0].args()), calls[0].thread_id)]
    order = sorted(range(len(calls)), key=lambda k: calls[k].key)
    try:
        rows = await pool.fetch(batched, *columns([calls[k] for k in order]))
    except Exception as exc:
        if unavailable(owner.dsn, exc) is not None:
            raise
        owner.batch_fallbacks += 1
        return await _one_by_one(pool, single, calls)
    out: list[asyncpg.Record | BaseException | None] = [None] * len(calls)
    for row in rows:
        out[order[row["ord"] - 1]] = row
    if any(row is None for row in out):
        raise RuntimeError(f"a batch of {len(calls)} calls got {len(rows)} rows back")
    return out  # type: ignore[return-value]


async def _one_by_one(
    pool: asyncpg.Pool, single: str, calls: list[Any]
) -> list[asyncpg.Record | BaseException]:
    """Each call alone, in order: a failure is that call's outcome only."""
    out: list[asyncpg.Record | BaseException] = []
    for call in calls:
        try:
            out.append(one(await pool.fetchrow(single, *call.args()), call.thread_id))
        except Exception as exc:
            out.append(exc)
    return out
