"""Arguments and rows of the driver's statements: ids checked before they reach the server,
metadata and versions as JSON text, inbox entries as the parallel arrays `hitl_set_inbox` takes,
and the rows read back turned into checkpoints, inbox entries and run requests."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from hitl_async.checkpoint.base import (
    CheckpointRecord,
    InboxEntry,
    Lease,
    LoadedCheckpoint,
    RunRequest,
    WriteRecord,
)
from hitl_async.checkpoint.ids import check_id
from hitl_async.checkpoint.rows import (
    checked_inbox_entry,
    checked_metadata,
    checked_request,
    checked_versions,
)
from hitl_async.errors import CorruptRecordError, SerializationError

__all__ = [
    "bools_as_ints",
    "check_text",
    "dumps",
    "inbox_columns",
    "inbox_entry",
    "lease_token",
    "loaded",
    "one",
    "run_request",
]


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def bools_as_ints(value: Any) -> Any:
    """A filter value with booleans as 0/1 at every depth, as `hitl_json_norm` maps metadata."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Mapping):
        return {k: bools_as_ints(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [bools_as_ints(v) for v in value]
    return value


def check_text(name: str, value: str) -> None:
    """An id PostgreSQL `text` can hold (no NUL, no lone surrogate; a thread id non-empty and
    of bounded length): `InvalidThreadIdError` up front instead of a server encoding error."""
    if name == "thread_id":
        check_id("thread id", value)
    else:
        check_id(name, value, empty_ok=True)


def lease_token(thread_id: str, lease: Lease | None) -> int | None:
    """The token a fenced write checks, or None for an unfenced one."""
    if lease is None:
        return None
    if lease.thread_id != thread_id:
        raise ValueError(
            f"the lease is for thread {lease.thread_id!r}, not {thread_id!r}: a write is fenced "
            "by the lease of its own thread"
        )
    return lease.token


def inbox_columns(thread_id: str, inbox: Sequence[InboxEntry] | None) -> list[list[Any] | None]:
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
        check_text("interrupt_id", e.interrupt_id)
        check_text("node", e.node)
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


def inbox_entry(row: asyncpg.Record) -> InboxEntry:
    return checked_inbox_entry(dict(row.items()))


def run_request(row: asyncpg.Record) -> RunRequest:
    return checked_request(dict(row.items()))


def _where(thread_id: str, checkpoint_ns: str) -> str:
    ns = f" (namespace {checkpoint_ns!r})" if checkpoint_ns else ""
    return f"thread {thread_id!r}{ns}"


def loaded(thread_id: str, checkpoint_ns: str, row: asyncpg.Record) -> LoadedCheckpoint:
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


def one(row: asyncpg.Record | None, thread_id: str | None, what: str = "") -> asyncpg.Record:
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
