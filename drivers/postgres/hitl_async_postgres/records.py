"""`PostgresRecordStore`: `hitl serve`'s records (threads, runs, assistants, run event logs) in
tables `srv_*` of the checkpoint schema, and new events announced with NOTIFY.

Appending an event inserts it and calls `pg_notify` in one statement; every process LISTENs on
the schema's channel (one connection each) and wakes its readers of that run, who then read the
table from the last id they saw, so an event missed while disconnected is still read. Exclusive
run inserts run one function that holds a transaction-scoped advisory lock on the thread while
it checks and inserts; read-modify-writes are optimistic (read, then update only if the
document is unchanged, else again): one round trip per statement, no explicit transactions. The
store remembers the last document text it read or wrote per run and thread, and an update first
tries its compare-and-set against that, so the usual update (of a record this process just
read or wrote) is one round trip; when another process changed it meanwhile, it reads again.

New threads commit synchronously (durable once acknowledged); runs, status updates and event
appends commit asynchronously (`synchronous_commit = off`: no fsync wait). PostgreSQL writes
its WAL in order, so the next synchronous commit makes them durable too: a new run's, that of
its queue entry, which the server enqueues before it answers; the others', the queue's when a
run ends; a server crash can lose only the last fraction of a second of
them, which the run's queue entry and checkpoints (always synchronous) let a reader recover:
a run whose end event was lost is read as ended from its record.
"""

from __future__ import annotations

from typing import Any

from hitl_async_postgres._migrate import DEFAULT_SCHEMA
from hitl_async_postgres._records_runs import RecordRuns
from hitl_async_postgres._records_threads import RecordThreads
from hitl_async_postgres._url import split_url

__all__ = ["PostgresRecordStore", "records_from_url"]


class PostgresRecordStore(RecordThreads, RecordRuns):
    """Server records in `schema` of the database at `dsn` (the pool and shared state in
    `_records_base`, assistants and threads in `_records_threads`, runs and events in
    `_records_runs`)."""

    poll_interval = 5.0


def records_from_url(url: str, **options: Any) -> PostgresRecordStore:
    """The `hitl_async.records` entry point: records in the schema a `postgresql:` URL (and its
    `schema` option) names, as the checkpoint driver uses it."""
    dsn, found = split_url(url)
    merged = {**found, **options}
    return PostgresRecordStore(dsn, schema=str(merged.get("schema", DEFAULT_SCHEMA)))
