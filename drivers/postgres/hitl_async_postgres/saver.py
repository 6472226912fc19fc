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

Layout: `PostgresSaver` composes one mixin per capability of `hitl_async.checkpoint` -
`_storage` (`BaseSaver`), `_leases`, `_inbox`, `_runs`, `_changes`, `_cache` - on the base
`_connections.PostgresConnections` (options, per-loop pools, migration); `_pool` has the
per-loop machinery (pool, keeper, warm-up), `_calls` the batched calls and their batchers,
`_rows` the statements' arguments and rows, `_failures` the mapping of errors, `_queries` the
statements and `_sql` the migrations' SQL.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from hitl_async.checkpoint.tuples import sync_capable
from hitl_async.errors import StoreLostError
from hitl_async_postgres._cache import PostgresCache
from hitl_async_postgres._changes import PostgresChangeFeed
from hitl_async_postgres._failures import GONE, unavailable, where_dsn
from hitl_async_postgres._inbox import PostgresInbox
from hitl_async_postgres._leases import PostgresLeases
from hitl_async_postgres._runs import PostgresRunQueue
from hitl_async_postgres._storage import PostgresStorage
from hitl_async_postgres._url import split_url

__all__ = ["PostgresSaver", "from_url"]


class PostgresSaver(
    PostgresStorage,
    PostgresLeases,
    PostgresInbox,
    PostgresRunQueue,
    PostgresChangeFeed,
    PostgresCache,
):
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
    is how many connections a new pool opens and warms up at once (see `warm_up`), so that a
    burst of calls does not pay a cold server backend per connection it needs.
    """


def _mapped(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(self: PostgresSaver, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except GONE as exc:
            if not self._migrated:
                raise
            raise StoreLostError(
                f"PostgreSQL schema {self.schema!r} ({where_dsn(self.dsn)})",
                "its tables or functions were dropped while this saver was using it "
                f"({type(exc).__name__}: {exc})",
            ) from exc
        except Exception as exc:
            mapped = unavailable(self.dsn, exc)
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
    "thread_namespaces",
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
# As on every saver (hitl_async.checkpoint.tuples), after the mapping wrapped it again.
PostgresSaver.delete_thread = sync_capable(PostgresSaver.delete_thread)  # type: ignore[method-assign]


def from_url(url: str, **options: Any) -> PostgresSaver:
    """Entry point for `hitl_async.connect("postgresql://...", **options)`.

    Options may also be given in the URL's query string; keyword options win.
    """
    dsn, url_options = split_url(url)
    return PostgresSaver(dsn, **{**url_options, **options})
