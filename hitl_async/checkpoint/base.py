"""The driver protocol: the narrow, byte-level interface every checkpoint store implements.

The engine serializes everything itself; a driver only stores and returns bytes plus a few plain
fields it must understand (ids, versions, metadata for filtering). One superstep is one `commit()`:
a new checkpoint, only the channel blobs that changed, and optionally pending writes, applied
atomically and only if the thread's head is still the one the run started from.

Storage model (per thread and checkpoint namespace):
- a *head* pointer: the id of the newest checkpoint (where leases and run state can live later);
- checkpoints: `CheckpointRecord`s, newest first by id (ids are time-ordered strings);
- blobs: `(channel, version) -> bytes`; a checkpoint's `channel_versions` names the blob of each
  channel, so an unchanged channel is stored once however many checkpoints refer to it;
- writes: `(checkpoint_id, task_id, idx) -> WriteRecord`, the pending writes of the step that
  runs from a checkpoint; writing the same key again replaces the row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, ClassVar, Self

__all__ = ["BaseSaver", "BlobRecord", "CheckpointRecord", "LoadedCheckpoint", "WriteRecord"]


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """One checkpoint as a driver stores it.

    `metadata` is JSON-safe (str keys; str, int, float, bool, None, lists and dicts of those) so a
    driver may store it natively and filter on it. `header` is opaque engine data. `created_at`
    is UTC ISO-8601 with microseconds (`2026-11-24T09:33:10.955979+00:00`), so it sorts as text.
    """

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    created_at: str
    channel_versions: Mapping[str, str]
    header: bytes
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """The serialized value of one channel at one version."""

    channel: str
    version: str
    data: bytes


@dataclass(frozen=True, slots=True)
class WriteRecord:
    """One pending write of a task, keyed by `(task_id, idx)` within its checkpoint."""

    task_id: str
    idx: int
    channel: str
    data: bytes
    task_path: str = ""


@dataclass(frozen=True, slots=True)
class LoadedCheckpoint:
    """A checkpoint with the blobs of all its channels and its pending writes (any order)."""

    record: CheckpointRecord
    blobs: Mapping[str, bytes]
    writes: Sequence[WriteRecord]


class BaseSaver(ABC):
    """Base class of checkpoint stores (drivers). Subclass it to add a store.

    Every method is a coroutine run in the caller's event loop; a driver connects lazily on first
    use, so constructing one never does I/O. A driver must be usable from several tasks at once.
    """

    io_free: ClassVar[bool] = False
    """True when a commit completes without I/O, so the scheduler need not overlap it."""

    async def setup(self) -> None:  # noqa: B027 - optional hook
        """Create tables/keys if needed; idempotent. Called lazily by drivers that need it."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections. The saver may not be used afterwards."""

    async def destroy(self) -> None:  # noqa: B027 - optional hook
        """Delete everything this saver stored (its rows, schema or key prefix): for tests and
        teardown, never called by the engine."""

    async def __aenter__(self) -> Self:
        await self.setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def commit(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        *,
        expected_head: str | None,
        writes: Sequence[WriteRecord] = (),
    ) -> None:
        """Store a new checkpoint atomically and make it the head of its namespace.

        Only if the current head of `(record.thread_id, record.checkpoint_ns)` is `expected_head`
        (`None`: the namespace has no checkpoint yet); otherwise raise
        `hitl_async.CheckpointConflictError` and store nothing. `blobs` are only the channels that
        changed; `writes` (if any) become the new checkpoint's pending writes.
        """

    @abstractmethod
    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
    ) -> None:
        """Store pending writes of finished tasks against a checkpoint (upsert by task id, idx)."""

    @abstractmethod
    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        """The head (or the given checkpoint) with its blobs and pending writes, in one round trip.

        `None` when it does not exist.
        """

    @abstractmethod
    async def history(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        """Checkpoints newest first; only ids `< before`; at most `limit` (0: none); metadata
        `filter` matches when every key is present with a value equal by Python's `==` (so
        `1 == 1.0 == True`, and dicts compare regardless of key order)."""

    @abstractmethod
    async def delete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint, blob and write of the thread, in every namespace."""

    @abstractmethod
    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        """Delete old checkpoints of a thread; return how many were deleted.

        In each namespace a checkpoint survives if it is among the `keep_last` newest, or created
        after `newer_than`, or is the head (the head holds any pending interrupt, so a paused
        thread stays resumable). Blobs no kept checkpoint refers to and writes of deleted
        checkpoints go too. With neither argument, nothing is deleted.
        """

    @abstractmethod
    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        """Ids of threads that have at least one checkpoint, in no guaranteed order."""
