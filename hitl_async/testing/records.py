"""Hand-made records for the conformance suite (and for a driver's own tests): the byte-level
protocol, no engine involved."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    InboxEntry,
    LoadedCheckpoint,
    RunRequest,
    WriteRecord,
)

__all__ = [
    "HOSTILE",
    "OLD",
    "assert_loaded",
    "blob",
    "by_key",
    "chain",
    "cid",
    "entry",
    "expected_blobs",
    "rec",
    "record",
    "request",
    "single_blob",
]

OLD = "2020-01-01T00:00:00.000000+00:00"


def cid(n: int) -> str:
    """A time-ordered checkpoint id (ids sort as text)."""
    return f"1ef{n:09d}"


def rec(
    thread_id: str,
    checkpoint_id: str,
    versions: Mapping[str, str],
    *,
    ns: str = "",
    parent: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    created_at: str | None = None,
) -> CheckpointRecord:
    """A hand-made checkpoint record."""
    return CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=ns,
        checkpoint_id=checkpoint_id,
        parent_id=parent,
        created_at=created_at or datetime.now(UTC).isoformat(timespec="microseconds"),
        channel_versions=dict(versions),
        header=b"hdr\x00\xff" + checkpoint_id.encode(),
        metadata=dict(metadata or {}),
    )


def blob(channel: str, version: str, data: bytes | None = None) -> BlobRecord:
    return BlobRecord(
        channel, version, data if data is not None else f"{channel}@{version}".encode()
    )


def expected_blobs(versions: Mapping[str, str]) -> dict[str, bytes]:
    return {ch: f"{ch}@{v}".encode() for ch, v in versions.items()}


def by_key(writes: Sequence[WriteRecord]) -> list[WriteRecord]:
    return sorted(writes, key=lambda w: (w.task_id, w.idx))


async def chain(
    saver: BaseSaver,
    thread_id: str,
    n: int,
    *,
    ns: str = "",
    metadata: Any = None,
    created_at: Any = None,
) -> list[CheckpointRecord]:
    """Commit `n` checkpoints in a row; channel `a` changes every step, `const` never does."""
    records: list[CheckpointRecord] = []
    head: str | None = None
    for i in range(1, n + 1):
        versions = {"const": "1", "a": str(i)}
        r = rec(
            thread_id,
            cid(i),
            versions,
            ns=ns,
            parent=head,
            metadata=metadata(i) if metadata else {"step": i},
            created_at=created_at(i) if created_at else None,
        )
        blobs = [blob("a", str(i))] + ([blob("const", "1")] if i == 1 else [])
        await saver.commit(r, blobs, expected_head=head)
        records.append(r)
        head = r.checkpoint_id
    return records


def assert_loaded(got: LoadedCheckpoint | None, record: CheckpointRecord) -> None:
    """`got` is `record` with exactly the blobs its channel_versions name."""
    assert got is not None
    assert got.record == record
    assert dict(got.blobs) == expected_blobs(record.channel_versions)


HOSTILE = ['"; DROP TABLE x; --', "'", "%", "*", "a:b", "a\nb", "ü🙂", "\\", "_", "{x}", " "]
"""Ids that break naive key, glob, SQL or path handling; every store must keep them apart."""


def record(thread: str, cid: str, parent: str | None = None) -> CheckpointRecord:
    """A checkpoint record whose one channel `x` is at version `cid` (for coordination tests)."""
    return CheckpointRecord(
        thread_id=thread,
        checkpoint_ns="",
        checkpoint_id=cid,
        parent_id=parent,
        created_at=f"2026-01-01T00:00:00.{cid[-6:]}+00:00",
        channel_versions={"x": cid},
        header=b"h",
        metadata={"step": 0},
    )


def single_blob(cid: str) -> list[BlobRecord]:
    """The blob of `record(..., cid)`."""
    return [BlobRecord("x", cid, b"v-" + cid.encode())]


def entry(thread: str, iid: str, *, node: str = "ask", created: str = "1", **kw: Any) -> InboxEntry:
    """An inbox entry created at second `created` of 2026-01-01."""
    return InboxEntry(
        thread_id=thread,
        interrupt_id=iid,
        checkpoint_ns="",
        node=node,
        value=b"q-" + iid.encode(),
        created_at=f"2026-01-01T00:00:0{created}.000000+00:00",
        **kw,
    )


def request(rid: str, thread: str, created: str, queue: str = "q") -> RunRequest:
    return RunRequest(
        id=rid,
        queue=queue,
        thread_id=thread,
        payload=b"p-" + rid.encode(),
        created_at=f"2026-01-01T00:00:0{created}.000000+00:00",
    )
