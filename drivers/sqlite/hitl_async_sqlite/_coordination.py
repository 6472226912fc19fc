"""Synchronous SQL of the coordination protocol: leases, the inbox index and the run queue.

Like `_ops`, everything here runs whole on the connection's worker thread. Writes are jobs for
`_ops.run_batch` (one `BEGIN IMMEDIATE` transaction, a SAVEPOINT each), so every decision (is
the lease free? which request is the oldest runnable one?) is made under SQLite's write lock:
processes sharing the file serialize on it, and two of them never both win. "Now" is
`time.time()` read inside the job, once the lock is held; every process on one machine shares
that clock. Fencing of `commit`/`put_writes` lives in `_writes` (it guards their transaction).
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from hitl_async.checkpoint.base import InboxEntry, Lease, LoadedCheckpoint, RunRequest
from hitl_async.checkpoint.capabilities import InboxQuery, RunQuery
from hitl_async.checkpoint.rows import checked_inbox_entry, checked_request
from hitl_async.errors import LeaseLostError, ThreadBusyError
from hitl_async_sqlite import _ops, _writes
from hitl_async_sqlite._ops import Job

__all__ = [
    "INBOX_COLUMNS",
    "LeaseClock",
    "acquire_and_load_job",
    "acquire_lease_job",
    "claim_job",
    "data_version",
    "enqueue_job",
    "expired_leases",
    "finish_job",
    "get_request",
    "inbox_query",
    "list_inbox",
    "list_requests",
    "poll_work",
    "release_lease_job",
    "renew_claim_job",
    "renew_lease_job",
    "work_state",
]

# --------------------------------------------------------------------------- leases


class LeaseClock:
    """When a lease another process wrote has really expired, judged on this process's clocks.

    Processes sharing a SQLite file have no common clock: a process whose wall clock runs ahead
    (by 120 s, say) would find every live lease expired and steal it. So a lease is taken over
    only once it *looks* expired by the wall clock and has also not changed (same token and
    expiry: its holder did not renew it) for its whole ttl as this saver watched it on its own
    monotonic clock; a lease this saver wrote itself is judged by the monotonic time it wrote
    it. A live holder renews every third of its ttl, so it is never taken over, whatever the
    clocks say; a dead one is after at most one more ttl. Used only by whoever holds the saver's
    connection (its worker thread, or a sync caller running a job itself), one at a time."""

    def __init__(self) -> None:
        self.own: dict[str, tuple[int, float, float]] = {}  # thread -> token, expires, mono end
        self.seen: dict[str, tuple[int, float, float]] = {}  # thread -> token, expires, first

    def wrote(self, thread_id: str, token: int, expires_at: float, ttl: float) -> None:
        self.own[thread_id] = (token, expires_at, time.monotonic() + ttl)
        self.seen.pop(thread_id, None)

    def expired(self, thread_id: str, token: int, expires_at: float, ttl: float) -> bool:
        """Whether a lease row (unreleased) may be taken over now."""
        if expires_at >= time.time():
            return False
        mine = self.own.get(thread_id)
        if mine is not None and mine[:2] == (token, expires_at):
            return time.monotonic() >= mine[2]
        if ttl <= 0:  # written before its ttl was recorded: the wall clock alone
            return True
        now = time.monotonic()
        seen = self.seen.get(thread_id)
        if seen is None or seen[:2] != (token, expires_at):
            if len(self.seen) > 10_000:
                self.seen.clear()
            self.seen[thread_id] = (token, expires_at, now)
            return False
        return now - seen[2] >= ttl

    def busy_until(self, thread_id: str, expires_at: float, ttl: float) -> float:
        """When a lease that looked expired but is not confirmed yet may be taken (wall)."""
        seen = self.seen.get(thread_id)
        if seen is None:
            return expires_at
        return time.time() + max(0.0, ttl - (time.monotonic() - seen[2]))


def acquire_lease_job(
    thread_id: str, owner: str, ttl: float, graph: str, clock: LeaseClock | None = None
) -> Job:
    """A job taking the thread's lease with the next token, or raising `ThreadBusyError`."""
    clock = clock or LeaseClock()

    def job(conn: sqlite3.Connection) -> Lease:
        now = time.time()
        row = conn.execute(
            "SELECT owner, token, expires_at, released, ttl FROM leases WHERE thread_id = ?",
            (thread_id,),
        ).fetchone()
        if row is not None and not row[3] and not clock.expired(thread_id, row[1], row[2], row[4]):
            until = row[2] if row[2] >= now else clock.busy_until(thread_id, row[2], row[4])
            raise ThreadBusyError(thread_id, row[0], until)
        lease = Lease(thread_id, owner, (row[1] if row is not None else 0) + 1, now + ttl, graph)
        conn.execute(
            "INSERT INTO leases (thread_id, owner, token, expires_at, graph, released, ttl) "
            "VALUES (?, ?, ?, ?, ?, 0, ?) ON CONFLICT (thread_id) DO UPDATE SET "
            "owner = excluded.owner, token = excluded.token, expires_at = excluded.expires_at, "
            "graph = excluded.graph, released = 0, ttl = excluded.ttl",
            (thread_id, owner, lease.token, lease.expires_at, graph, float(ttl)),
        )
        clock.wrote(thread_id, lease.token, lease.expires_at, ttl)
        return lease

    return job


def renew_lease_job(lease: Lease, ttl: float, clock: LeaseClock | None = None) -> Job:
    """A job extending a held lease from now, or raising `LeaseLostError`."""

    def job(conn: sqlite3.Connection) -> Lease:
        row = conn.execute(
            "SELECT owner, token, graph, released FROM leases WHERE thread_id = ?",
            (lease.thread_id,),
        ).fetchone()
        if row is None or row[3] or row[1] != lease.token:
            raise LeaseLostError(lease.thread_id, lease.token, row[1] if row else None)
        expires_at = time.time() + ttl
        conn.execute(
            "UPDATE leases SET expires_at = ?, ttl = ? WHERE thread_id = ?",
            (expires_at, float(ttl), lease.thread_id),
        )
        if clock is not None:
            clock.wrote(lease.thread_id, row[1], expires_at, ttl)
        return Lease(lease.thread_id, row[0], row[1], expires_at, row[2])

    return job


def acquire_and_load_job(
    thread_id: str,
    owner: str,
    ttl: float,
    graph: str,
    checkpoint_ns: str,
    checkpoint_id: str | None,
    clock: LeaseClock | None = None,
) -> Job:
    """A job taking the lease, then loading the checkpoint the run starts from, in the same
    transaction (so nobody can commit between the two)."""
    acquire = acquire_lease_job(thread_id, owner, ttl, graph, clock)

    def job(conn: sqlite3.Connection) -> tuple[Lease, LoadedCheckpoint | None]:
        lease: Lease = acquire(conn)
        return lease, _ops.load(conn, thread_id, checkpoint_ns, checkpoint_id)

    return job


def release_lease_job(lease: Lease) -> Job:
    """A job marking the lease released if its token is still current; True if it was."""

    def job(conn: sqlite3.Connection) -> bool:
        return _writes.release_lease(conn, lease)

    return job


def expired_leases(
    conn: sqlite3.Connection, graph: str | None, limit: int, clock: LeaseClock | None = None
) -> list[Lease]:
    """Unreleased leases whose expiry passed, oldest expiry first (index `leases_expiry`), and
    confirmed by `clock` (watched unrenewed for their ttl: see `LeaseClock`)."""
    clock = clock or LeaseClock()
    sql = (
        "SELECT thread_id, owner, token, expires_at, graph, ttl FROM leases "
        "WHERE released = 0 AND expires_at < ?"
    )
    params: list[Any] = [time.time()]
    if graph is not None:
        sql += " AND graph = ?"
        params.append(graph)
    sql += " ORDER BY expires_at, thread_id LIMIT ?"
    params.append(limit)
    return [
        Lease(*row[:5])
        for row in conn.execute(sql, params).fetchall()
        if clock.expired(row[0], row[2], row[3], row[5])
    ]


# --------------------------------------------------------------------------- inbox

INBOX_COLUMNS = (
    "thread_id, interrupt_id, checkpoint_ns, node, value, created_at, deadline, on_timeout, graph"
)


def inbox_query(query: InboxQuery) -> tuple[str, list[Any]]:
    """The SQL and parameters of a `list_inbox` page: the `inbox` table only, keyset-paged in
    (created_at, thread_id, interrupt_id) order, the order of index `inbox_order`."""
    thread_id, node, graph = query.thread_id, query.node, query.graph
    due_before, after = query.due_before, query.after
    where: list[str] = []
    params: list[Any] = []
    if thread_id is not None:
        where.append("thread_id = ?")
        params.append(thread_id)
    if node is not None:
        where.append("node = ?")
        params.append(node)
    if graph is not None:
        where.append("graph = ?")
        params.append(graph)
    if due_before is not None:
        where.append("deadline < ?")
        params.append(due_before)
    if after is not None:
        where.append("(created_at, thread_id, interrupt_id) > (?, ?, ?)")
        params.extend(after)
    sql = f"SELECT {INBOX_COLUMNS} FROM inbox"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at, thread_id, interrupt_id LIMIT ?"
    params.append(query.limit)
    return sql, params


_INBOX_NAMES = [name.strip() for name in INBOX_COLUMNS.split(",")]


def list_inbox(conn: sqlite3.Connection, query: InboxQuery) -> list[InboxEntry]:
    """One page of pending interrupts, from the inbox index only (never checkpoints). A row
    with a column of the wrong type is an entry with `damaged` set, in its place."""
    due_before = query.due_before
    if query.limit <= 0 or (due_before is not None and math.isnan(due_before)):
        return []
    sql, params = inbox_query(query)
    return [
        checked_inbox_entry(dict(zip(_INBOX_NAMES, row, strict=True)))
        for row in conn.execute(sql, params)
    ]


# --------------------------------------------------------------------------- run queue

_RUN_COLUMNS = (
    "id, queue, thread_id, payload, status, created_at, owner, claim_expires, attempts, result, "
    "error"
)

# The oldest runnable request of a queue: queued, or running with an expired claim, on a thread
# with no running request whose claim is live (in any queue). Index `runs_queue` finds the
# queue's pending rows (done ones are never read), `runs_thread` answers the busy check.
_RUNNABLE = (
    "SELECT r.id FROM runs AS r WHERE r.queue = ? AND r.status IN ('queued', 'running') "
    "AND (r.status = 'queued' OR ifnull(r.claim_expires, 0) < ?) "
    "AND NOT EXISTS (SELECT 1 FROM runs AS o WHERE o.thread_id = r.thread_id "
    "AND o.status = 'running' AND o.claim_expires >= ?) "
    "ORDER BY r.created_at, r.id LIMIT 1"
)


_RUN_NAMES = [name.strip() for name in _RUN_COLUMNS.split(",")]


def _request(row: Sequence[Any]) -> RunRequest:
    """The request of a `runs` row, checked (`CorruptRecordError` for a damaged row)."""
    return checked_request(dict(zip(_RUN_NAMES, row, strict=True)))


def get_request(conn: sqlite3.Connection, request_id: str) -> RunRequest | None:
    """The request with this id, or None."""
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (request_id,)).fetchone()
    return None if row is None else _request(row)


def list_requests(conn: sqlite3.Connection, query: RunQuery) -> list[RunRequest]:
    """A page of requests, newest first by (created_at, id); a damaged row is listed with
    `damaged` set, in its place."""
    if query.limit <= 0:
        return []
    where: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("queue", query.queue),
        ("thread_id", query.thread_id),
        ("status", query.status),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.before is not None:
        where.append("(created_at, id) < (?, ?)")
        params.extend(query.before)
    sql = f"SELECT {_RUN_COLUMNS} FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
    params.append(query.limit)
    return [
        checked_request(dict(zip(_RUN_NAMES, row, strict=True)), lenient=True)
        for row in conn.execute(sql, params)
    ]


def enqueue_job(request: RunRequest) -> Job:
    """A job storing a new request; `ValueError` if its id exists."""
    row = (
        request.id,
        request.queue,
        request.thread_id,
        bytes(request.payload),
        request.status,
        request.created_at,
        request.owner,
        request.claim_expires,
        int(request.attempts),
        None if request.result is None else bytes(request.result),
        request.error,
    )

    def job(conn: sqlite3.Connection) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (request.id,)).fetchone():
            raise ValueError(f"run request {request.id!r} already exists")
        conn.execute(f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 11)})", row)

    return job


def claim_job(queue: str, owner: str, ttl: float) -> Job:
    """A job claiming the oldest runnable request of `queue` for `owner`; None if there is none.

    Pick and update happen in one write transaction, so concurrent claimers (threads or
    processes) serialize on the write lock and never get the same request.
    """

    def job(conn: sqlite3.Connection) -> RunRequest | None:
        now = time.time()
        row = conn.execute(_RUNNABLE, (queue, now, now)).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE runs SET status = 'running', owner = ?, claim_expires = ?, "
            "attempts = attempts + 1 WHERE id = ?",
            (owner, now + ttl, row[0]),
        )
        return get_request(conn, row[0])

    return job


def renew_claim_job(request_id: str, owner: str, ttl: float) -> Job:
    """A job extending `owner`'s claim from now; True if `owner` still held it."""

    def job(conn: sqlite3.Connection) -> bool:
        cursor = conn.execute(
            "UPDATE runs SET claim_expires = ? WHERE id = ? AND status = 'running' AND owner = ?",
            (time.time() + ttl, request_id, owner),
        )
        return cursor.rowcount > 0

    return job


def finish_job(
    request_id: str, owner: str | None, status: str, result: bytes | None, error: str | None
) -> Job:
    """A job setting a final status (or giving the request back to `queued`).

    With `owner`, only while that owner runs it; with None, only while it is queued. Returns the
    request's `(queue, thread_id)` if it changed, else None.
    """

    def job(conn: sqlite3.Connection) -> tuple[str, str] | None:
        row = conn.execute(
            "SELECT queue, thread_id, status, owner FROM runs WHERE id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return None
        queue, thread_id, current, holder = row
        if owner is None:
            if current != "queued":
                return None
        elif current != "running" or holder != owner:
            return None
        if status == "queued":
            # A request given back was not attempted: its claim does not count.
            conn.execute(
                "UPDATE runs SET status = 'queued', owner = NULL, claim_expires = NULL, "
                "attempts = max(attempts - 1, 0) WHERE id = ?",
                (request_id,),
            )
        else:
            conn.execute(
                "UPDATE runs SET status = ?, result = ?, error = ?, claim_expires = NULL "
                "WHERE id = ?",
                (status, None if result is None else bytes(result), error, request_id),
            )
        return queue, thread_id

    return job


def work_state(conn: sqlite3.Connection, queue: str) -> tuple[bool, float | None]:
    """Whether `queue` has a runnable request now, and when the earliest live claim of the queue
    expires (None: no live claim), i.e. when that may change without anybody writing."""
    now = time.time()
    if conn.execute(_RUNNABLE, (queue, now, now)).fetchone() is not None:
        return True, None
    (expiry,) = conn.execute(
        "SELECT min(claim_expires) FROM runs WHERE queue = ? AND status = 'running' "
        "AND claim_expires >= ?",
        (queue, now),
    ).fetchone()
    return False, expiry


def data_version(conn: sqlite3.Connection) -> int:
    """`PRAGMA data_version`: changes whenever *another* connection (any process) commits."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def poll_work(
    conn: sqlite3.Connection, queue: str, seen: int | None
) -> tuple[int, tuple[bool, float | None] | None]:
    """One look for `wait_for_work`: the data version, and the queue's `work_state` unless the
    version is still `seen` (nobody else committed: nothing to re-read)."""
    version = data_version(conn)
    if seen is not None and version == seen:
        return version, None
    return version, work_state(conn, queue)
