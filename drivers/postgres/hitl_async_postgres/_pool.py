"""The per-event-loop side of the driver: `LoopPool` (a loop's asyncpg pool, LISTEN connection
and batchers), the keeper task that closes them with their loop, the finalizer of an unclosed
saver, the connection class released without a reset query, the warm-up of new connections,
and the filter that keeps asyncpg's pool from logging a traceback per reconnect attempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg

from hitl_async.checkpoint.batching import Batcher
from hitl_async.checkpoint.lifecycle import warn_unclosed
from hitl_async_postgres._calls import (
    AcquireCall,
    ChainCall,
    PutWritesCall,
    ReleaseCall,
    acquire_columns,
    chain_columns,
    put_writes_columns,
    release_columns,
)
from hitl_async_postgres._listen import Listener
from hitl_async_postgres._queries import Queries
from hitl_async_postgres._rows import one

if TYPE_CHECKING:
    from hitl_async_postgres._migrate import AnyConnection

__all__ = [
    "CLOSE_TIMEOUT",
    "LoopPool",
    "NoResetConnection",
    "close_pool",
    "keep",
    "open_listener",
    "opened",
    "release_pools",
    "shielded",
    "warm_up",
]

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

CLOSE_TIMEOUT = 5.0


class NoResetConnection(asyncpg.Connection):
    """A connection released to the pool without a reset query: the driver keeps no session
    state (no SET, LISTEN, cursors or session advisory locks), so resetting only costs a round
    trip. Open transactions are still rolled back by asyncpg on release."""

    def get_reset_query(self) -> str:
        return ""


def _warm_chain(thread_id: str, token: int | None) -> ChainCall:
    """A chain of two checkpoints with blobs, a write and an inbox entry, releasing the lease:
    every statement of `hitl_commit_many` runs for it."""
    return ChainCall(
        thread_id, "", token, True, [None, "1"], ["1", "2"], [None, "1"], ["", ""],
        ['{"a":"1"}', '{"a":"2"}'], [b"", b""], ["{}", "{}"],
        [1, 2], ["a", "a"], ["1", "2"], [b"", b""],
        [0, 1], ["t"], [0], ["a"], [b""], [""],
        [["i"], [""], ["n"], [b""], [""], [None], [None], [""]],
    )  # fmt: skip


async def warm_up(conn: AnyConnection, q: Queries) -> None:
    """Run every statement that group commit sends (single and batched) once on `conn`, in a
    transaction rolled back at the end: a new server backend compiles the stored functions,
    plans their statements and loads the tables' metadata on first use (~20 ms of server CPU),
    which a burst of calls would otherwise pay on each connection the pool opens for it."""
    tag = uuid.uuid4().hex
    threads = [f"hitl-async warm-up {tag} {k}" for k in range(3)]
    acquires = [AcquireCall(t, "warm-up", 60.0, "", "", None) for t in threads]
    tx = conn.transaction()
    await tx.start()
    try:
        for _ in range(2):  # a free thread, then one with a checkpoint to load
            first = one(await conn.fetchrow(q.acquire_and_load, *acquires[0].args()), "warm-up")
            rows = await conn.fetch(q.acquire_and_load_batch, *acquire_columns(acquires[1:]))
            tokens = [first["token"], *(r["token"] for r in rows)]
            if first["checkpoint_id"] is None:
                chains = [_warm_chain(t, token) for t, token in zip(threads, tokens, strict=True)]
                await conn.fetchrow(q.commit_many, *chains[0].args())
                await conn.fetch(q.commit_many_batch, *chain_columns(chains[1:]))
        puts = [
            PutWritesCall(t, "", "2", ["t"], [1], ["a"], [b""], [""], token, [[]] * 8)
            for t, token in zip(threads, tokens, strict=True)
        ]
        await conn.fetchrow(q.put_writes, *puts[0].args())
        await conn.fetch(q.put_writes_batch, *put_writes_columns(puts[1:]))
        releases = [ReleaseCall(t, token) for t, token in zip(threads, tokens, strict=True)]
        await conn.fetchrow(q.release_lease, *releases[0].args())
        await conn.fetch(q.release_batch, *release_columns(releases[1:]))
    finally:
        await tx.rollback()


@dataclass(slots=True)
class LoopPool:
    """The pool of one event loop, its LISTEN connection (opened by the first wait), the task
    that closes both when that loop shuts down, and (with group commit) the batchers of
    `acquire_and_load`, `commit_many`, `put_writes` and `release_lease` calls made in that
    loop."""

    pool: asyncpg.Pool
    keeper: asyncio.Task[None] | None = None
    listener: Listener | None = None
    opening: asyncio.Task[Listener] | None = None  # the LISTEN connection being opened
    cold: bool = True  # its connections are still to be warmed up
    acquires: Batcher[AcquireCall, asyncpg.Record] | None = None
    commits: Batcher[ChainCall, asyncpg.Record] | None = None
    puts: Batcher[PutWritesCall, asyncpg.Record] | None = None
    releases: Batcher[ReleaseCall, asyncpg.Record] | None = None

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


async def keep(
    pools: dict[asyncio.AbstractEventLoop, LoopPool],
    loop: asyncio.AbstractEventLoop,
    entry: LoopPool,
) -> None:
    """Wait until cancelled (by `aclose()`, the saver's finalizer or the loop shutting down),
    then close the pool and the LISTEN connection of `loop`."""
    with contextlib.suppress(asyncio.CancelledError):
        await loop.create_future()
    if pools.get(loop) is entry:
        del pools[loop]
    await entry.wait_idle(CLOSE_TIMEOUT)  # batches already queued still get their answer
    listener, entry.listener = entry.listener, None
    if listener is not None:
        await listener.close()
    await close_pool(entry.pool)


def release_pools(pools: dict[asyncio.AbstractEventLoop, LoopPool], what: str, site: str) -> None:
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


async def open_listener(dsn: str, channels: Any, options: dict[str, Any]) -> Listener:
    return await Listener.open(dsn, channels, **options)


def opened(
    pools: dict[asyncio.AbstractEventLoop, LoopPool],
    loop: asyncio.AbstractEventLoop,
    entry: LoopPool,
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


async def shielded(work: Coroutine[Any, Any, _T]) -> _T:
    """Run `work` in a task of its own that the caller's cancellation does not interrupt (the
    caller stops waiting; the work finishes, and its error, if any, is not reported twice)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    return await asyncio.shield(task)


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def close_pool(pool: asyncpg.Pool) -> None:
    """Close gracefully, or terminate when that fails or takes too long."""
    try:
        await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
    except Exception:
        with contextlib.suppress(Exception):
            pool.terminate()
