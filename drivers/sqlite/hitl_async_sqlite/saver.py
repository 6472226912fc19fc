"""`SqliteSaver`: a durable checkpoint store in one SQLite file (WAL), on one worker thread.

One thread hop per operation
    `sqlite3` blocks, so the connection lives on a worker thread of its own (`_worker.Worker`,
    driven by `_connection`) and every operation is one plain synchronous function (`_ops`
    reads, `_writes` jobs, `_coordination`) that runs all its statements there in one go: a
    commit, a load or a prune costs one thread round trip however many statements it runs
    (awaiting one statement at a time would cost five or more per commit).

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

The saver is composed of one part per capability of `hitl_async.checkpoint.capabilities`, each
a mixin over `_connection.SqliteConnection`: `_checkpoints` (storage), `_leases`, `_inbox`,
`_runs` (the run queue), `_changes` (change notification) and `_cache` (the node cache).
"""

from __future__ import annotations

from typing import Any

from hitl_async_sqlite._cache import SqliteCache
from hitl_async_sqlite._changes import SqliteChangeFeed
from hitl_async_sqlite._checkpoints import SqliteCheckpoints
from hitl_async_sqlite._inbox import SqliteInbox
from hitl_async_sqlite._leases import SqliteLeases
from hitl_async_sqlite._runs import SqliteRunQueue
from hitl_async_sqlite._url import MEMORY as MEMORY
from hitl_async_sqlite._url import URL_OPTIONS as URL_OPTIONS
from hitl_async_sqlite._url import SqliteUrlOptions, parse_url

__all__ = ["SqliteSaver", "SqliteUrlOptions", "from_url", "parse_url"]


def from_url(url: str, **options: Any) -> SqliteSaver:
    """The `hitl_async.drivers` entry point: a `SqliteSaver` for a `sqlite:` URL.

    Keyword options override the URL's query options.
    """
    path, query = parse_url(url)
    merged: dict[str, Any] = {**query, **options}
    return SqliteSaver(path, **merged)


class SqliteSaver(
    SqliteCheckpoints, SqliteLeases, SqliteInbox, SqliteRunQueue, SqliteChangeFeed, SqliteCache
):
    """Checkpoints in a SQLite database file, safe for many tasks, loops and processes.

    Constructing one does no I/O: the worker thread starts, and the connection opens (and the
    schema is created), on first use. Any asyncio (or trio) event loop may use the saver, several
    at once. Close it with `aclose()` (from any loop); a saver dropped unclosed closes its
    connection when garbage-collected or at interpreter exit.

    Options: `busy_timeout` seconds to wait for another writer's lock (default 30);
    `journal_mode` (default "WAL"); `synchronous` ("NORMAL" by default under WAL, else "FULL");
    `max_batch`, the most write jobs grouped into one transaction (default 512).
    """

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SqliteSaver:
        """Same as the module-level `from_url`."""
        return from_url(url, **options)
