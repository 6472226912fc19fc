"""`PostgresConnections`: the base of `PostgresSaver` and of each of its capability mixins. It
holds the options and the shared state (queries, per-loop pools, migration state, pending
releases) and hands every store call the running event loop's pool (`_pool`, `_entry`), created,
migrated and warmed up on first use, and its LISTEN connection (`_listener`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from typing import Any

import asyncpg

from hitl_async.checkpoint.lifecycle import (
    after_fork_in_child,
    creation_site,
    forked_away,
    serves_one_caller,
)
from hitl_async.checkpoint.releases import PendingReleases
from hitl_async.telemetry import get_logger
from hitl_async_postgres._calls import (
    acquire_columns,
    chain_columns,
    new_batcher,
    put_writes_columns,
    release_columns,
)
from hitl_async_postgres._listen import Listener
from hitl_async_postgres._migrate import DEFAULT_SCHEMA, migrate
from hitl_async_postgres._migrate import destroy as _destroy_schema
from hitl_async_postgres._pool import (
    LoopPool,
    NoResetConnection,
    close_pool,
    keep,
    open_listener,
    opened,
    release_pools,
    shielded,
    warm_up,
)
from hitl_async_postgres._queries import Queries
from hitl_async_postgres._schema import channels, quote_schema

__all__ = ["PostgresConnections"]

# The driver's one logger keeps the name of its public module (filters may name it).
log = get_logger("hitl_async_postgres.saver")


def _forget_parent(saver: PostgresConnections) -> None:
    """In a forked child: drop the parent's pools (their sockets are the parent's sessions:
    never closed here) so the child connects afresh on first use."""
    forked_away.append(dict(saver._pools))
    saver._pools.clear()
    saver._locks.clear()


class PostgresConnections:
    """The options and the per-event-loop connections of a `PostgresSaver` (see its docstring
    for the options), shared by its capability mixins."""

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
            "connection_class": NoResetConnection,
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
        self._pools: dict[asyncio.AbstractEventLoop, LoopPool] = {}
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
        self._migrated = False
        self._closed = False
        self._pending_releases = PendingReleases()
        self._finalizer = weakref.finalize(
            self, release_pools, self._pools, f"PostgresSaver(schema={schema!r})", creation_site()
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

    async def _entry(self) -> LoopPool:
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
                entry = await shielded(self._new_entry(loop))
            # Shielded: a caller cancelled meanwhile must not interrupt a migration or a
            # warm-up mid-statement (its connection would go back to the pool mid-transaction).
            if self.auto_setup and not self._migrated:
                await shielded(self._migrate(entry.pool))
            if entry.cold:
                entry.cold = False
                # a sync-API thread's own loop runs one run at a time: no burst to warm up for
                if not (self._warm_by_default and serves_one_caller(loop)):
                    await shielded(self._warm(entry.pool))
        return entry

    async def _new_entry(self, loop: asyncio.AbstractEventLoop) -> LoopPool:
        """Create the pool of `loop` with its batchers and keeper, and register it."""
        pool = await asyncpg.create_pool(self.dsn, **self.pool_options)
        if self._closed:  # aclose() ran meanwhile
            await close_pool(pool)
            raise RuntimeError("this PostgresSaver is closed")
        entry = LoopPool(pool)
        if self.group_commit:
            entry.acquires = new_batcher(
                self, pool, self._q.acquire_and_load, self._q.acquire_and_load_batch,
                acquire_columns,
            )  # fmt: skip
            entry.commits = new_batcher(
                self, pool, self._q.commit_many, self._q.commit_many_batch, chain_columns
            )
            entry.puts = new_batcher(
                self, pool, self._q.put_writes, self._q.put_writes_batch, put_writes_columns
            )
            entry.releases = new_batcher(
                self, pool, self._q.release_lease, self._q.release_batch, release_columns
            )
        entry.keeper = loop.create_task(  # (it holds no reference to the saver)
            keep(self._pools, loop, entry), name="hitl-async-postgres pool keeper"
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
                await warm_up(conn, self._q)

        results = await asyncio.gather(
            *(warm_one() for _ in range(self.warm_connections)), return_exceptions=True
        )
        for exc in results:
            if isinstance(exc, BaseException):
                log.debug("could not warm up a connection: %r", exc)

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
                    open_listener(self.listen_dsn, self.channels, self.listen_options),
                    name="hitl-async-postgres LISTEN",
                )
                opening.add_done_callback(functools.partial(opened, self._pools, loop, entry))
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
                    await shielded(self._migrate(pool))

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
