"""Checkpoint storage on Redis (`BaseSaver`): commits, pending writes, loads, history, prune.

With `ttl`, each commit refreshes the TTL of every key of the thread (O(number of namespaces));
`put_writes` refreshes the keys it writes. Lease hashes get no TTL (their token must never
restart); inbox entries of a thread whose keys expired are dropped from the index by the next
`list_inbox` that meets them.

Fencing: `commit` and `put_writes` take the lease key and token; the script checks token,
`released` and expiry (by Redis TIME) before anything else, so a run that lost its lease writes
nothing (`LeaseLostError`). With `inbox=`, the same script replaces the thread's inbox entries.

`commit_many` writes a chain of commits (and the release of the lease, with `release=True`)
with the same script as `commit`: it checks the lease once and every commit of the chain
(heads, ids) before writing anything, so a refused chain stores nothing, then refreshes TTLs,
the threads index and publishes the change once for the whole chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    Commit,
    InboxEntry,
    Lease,
    LoadedCheckpoint,
    WriteRecord,
    prune_cutoff,
)
from hitl_async.checkpoint.ids import check_id
from hitl_async.errors import CheckpointConflictError, CheckpointCorruptError, SerializationError
from hitl_async_redis import _scripts
from hitl_async_redis._codec import (
    blob_args,
    canonical,
    decode_record,
    decode_write,
    encode_record,
    encode_write,
    text,
    untext,
    write_field,
)
from hitl_async_redis._connection import RedisConnection
from hitl_async_redis._failures import lease_lost
from hitl_async_redis._inbox import check_inbox, inbox_args

__all__ = ["RedisCheckpoints", "loaded_checkpoint"]


def _head_arg(head: str | None) -> bytes:
    return b"" if head is None else b"=" + text(head)


def _token(lease: Lease | None) -> bytes:
    """The fencing token argument of a write script ("": unfenced)."""
    return b"" if lease is None else str(int(lease.token)).encode()


def _where(thread_id: str, checkpoint_ns: str) -> str:
    ns = f" (namespace {checkpoint_ns!r})" if checkpoint_ns else ""
    return f"thread {thread_id!r}{ns}"


def loaded_checkpoint(thread_id: str, checkpoint_ns: str, reply: list[Any]) -> LoadedCheckpoint:
    """The checkpoint a load script returned (`{cid, value, blobs, writes}`), decoded; damaged
    bytes are a `CheckpointCorruptError`, a missing blob a `SerializationError`."""
    cid_b, value, flat, raw_writes = reply
    cid = untext(cid_b)
    try:
        record = decode_record(thread_id, checkpoint_ns, cid, value)
    except Exception as exc:  # damaged bytes: msgpack, JSON, lengths, types
        raise CheckpointCorruptError(
            thread_id, cid, "its stored record", f"{type(exc).__name__}: {exc}"
        ) from exc
    blobs: dict[str, bytes] = {}
    for i in range(0, len(flat), 2):
        channel, data = untext(flat[i]), flat[i + 1]
        if data is None:
            raise SerializationError(
                f"{_where(thread_id, checkpoint_ns)}, checkpoint {cid!r}: no blob for channel "
                f"{channel!r} at version {record.channel_versions.get(channel)!r}; the "
                "checkpoint store is corrupt"
            )
        blobs[channel] = data
    try:
        writes = [decode_write(w) for w in raw_writes if w is not None]
    except Exception as exc:
        raise CheckpointCorruptError(
            thread_id, cid, "a pending write", f"{type(exc).__name__}: {exc}"
        ) from exc
    return LoadedCheckpoint(record, blobs, writes)


class RedisCheckpoints(RedisConnection, BaseSaver):
    """Storage: every operation one script (`_scripts`), so one round trip and atomic."""

    any_loop = True
    """Usable from any event loop of the process at once (see `BaseSaver.any_loop`)."""

    if TYPE_CHECKING:  # `RedisLeases` provides it in `RedisSaver` (declared for mypy only)

        async def release_lease(self, lease: Lease) -> None: ...

    async def commit(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        *,
        expected_head: str | None,
        writes: Sequence[WriteRecord] = (),
        lease: Lease | None = None,
        inbox: Sequence[InboxEntry] | None = None,
    ) -> None:
        """Store a checkpoint and move the head, atomically, in one EVALSHA; see `BaseSaver`.

        With `lease` the script fences on it first; with `inbox` it replaces the thread's inbox.
        """
        check_id("thread id", record.thread_id)
        await self._commit([Commit(record, blobs, expected_head, writes, inbox)], lease, False)

    async def commit_many(
        self, commits: Sequence[Commit], *, lease: Lease | None = None, release: bool = False
    ) -> None:
        """Commit a chain of checkpoints of one thread and (with `release`) release `lease`, in
        one EVALSHA, all or nothing: the lease and the whole chain are checked before anything
        is written, so a `LeaseLostError` or `CheckpointConflictError` stores nothing."""
        for c in commits:
            check_id("thread id", c.record.thread_id)
        if not commits:
            if release and lease is not None:
                await self.release_lease(lease)
            return
        thread_id = commits[0].record.thread_id
        for c in commits:
            if c.record.thread_id != thread_id:
                raise ValueError(
                    f"commit_many takes commits of one thread: {c.record.thread_id!r} is not "
                    f"{thread_id!r}"
                )
        if release and lease is not None and lease.thread_id != thread_id:
            raise ValueError(f"the lease is of thread {lease.thread_id!r}, not {thread_id!r}")
        await self._commit(commits, lease, release)

    async def _commit(self, commits: Sequence[Commit], lease: Lease | None, release: bool) -> None:
        """Run the `COMMIT` script over a chain of commits of one thread (see its comment)."""
        thread_id = commits[0].record.thread_id
        t = self._thread(thread_id)
        base = t.base
        nshexes = [text(c.record.checkpoint_ns).hex() for c in commits]
        namespaces = list(dict.fromkeys(nshexes))
        keys = [
            f"{base}:head",
            f"{base}:ns",
            self._threads_key,
            t.lease,
            self._leases_key,
            *t.inbox,
        ]
        for nshex in namespaces:
            keys += self._ns_keys(base, nshex)
        # Only the last inbox given counts (each replaces the previous one in the same step).
        last_inbox = max((i for i, c in enumerate(commits) if c.inbox is not None), default=-1)
        args: list[Any] = [
            self._ttl_ms,
            t.tid,
            base,
            _token(lease),
            self._changes_channel,
            b"1" if release and lease is not None else b"0",
            t.member,
            len(namespaces),
            *namespaces,
            len(commits),
        ]
        for i, c in enumerate(commits):
            record = c.record
            if c.inbox is not None and i != last_inbox:
                check_inbox(thread_id, c.inbox)
            inbox_part = inbox_args(thread_id, c.inbox if i == last_inbox else None)
            args += [
                nshexes[i],
                _head_arg(c.expected_head),
                text(record.checkpoint_id),
                encode_record(record),
                len(c.blobs),
                inbox_part[0],
                len(c.writes),
                *blob_args(c.blobs),
                *inbox_part[1:],
            ]
            for w in c.writes:
                args.append(write_field(record.checkpoint_id, w.task_id, w.idx))
                args.append(encode_write(w))
        reply = await self._run(_scripts.COMMIT, keys, args)
        if reply == 1:
            return
        if reply[0] == 3:
            assert lease is not None
            raise lease_lost(thread_id, lease.token, reply)
        _, index, refusal = reply
        c = commits[int(index) - 1]
        if refusal == 2:  # the head matched, but the checkpoint id is already stored
            raise CheckpointConflictError.duplicate(
                c.record.thread_id,
                c.record.checkpoint_ns,
                c.record.checkpoint_id,
                c.expected_head,
                c.expected_head,
            )
        actual = untext(refusal[1:]) if refusal else None
        raise CheckpointConflictError(thread_id, c.record.checkpoint_ns, c.expected_head, actual)

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
        *,
        lease: Lease | None = None,
        inbox: Sequence[InboxEntry] | None = None,
    ) -> None:
        """Upsert pending writes by `(task_id, idx)`, fenced by `lease` and replacing the
        thread's inbox with `inbox` (if given), in one EVALSHA."""
        check_id("thread id", thread_id)
        if not writes and lease is None and inbox is None:
            return
        t = self._thread(thread_id)
        base = t.base
        nshex = text(checkpoint_ns).hex()
        keys = [
            f"{base}:ns",
            f"{base}:w:{nshex}",
            f"{base}:wi:{nshex}",
            t.lease,
            *t.inbox,
        ]
        args: list[Any] = [
            nshex,
            self._ttl_ms,
            _token(lease),
            t.tid,
            self._changes_channel,
            *inbox_args(thread_id, inbox),
        ]
        for w in writes:
            args.append(write_field(checkpoint_id, w.task_id, w.idx))
            args.append(encode_write(w))
        result = await self._run(_scripts.PUT_WRITES, keys, args)
        if isinstance(result, list):
            assert lease is not None
            raise lease_lost(thread_id, lease.token, result)

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        """The head (or `checkpoint_id`) with its blobs and writes, in one EVALSHA."""
        check_id("thread id", thread_id)
        keys, args = self._load_call(thread_id, checkpoint_ns, checkpoint_id)
        reply = await self._run(_scripts.LOAD, keys, args)
        if reply is None:
            return None
        return loaded_checkpoint(thread_id, checkpoint_ns, reply)

    async def history(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        before: str | None = None,
        limit: int | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[LoadedCheckpoint]:
        """Newest first, with blobs and writes; filtered and limited server-side, one EVALSHA."""
        check_id("thread id", thread_id)
        if limit is not None and limit <= 0:
            return []
        pairs: list[Any] = []
        for key, value in (filter or {}).items():
            wanted = canonical(value, tuples_as_lists=False)
            if not isinstance(key, str) or wanted is None:
                return []  # nothing stored can equal it
            pairs += [text(key), wanted.encode()]
        base = self._base(thread_id)
        nshex = text(checkpoint_ns).hex()
        bound = b"+" if before is None else b"(" + text(before)
        args: list[Any] = [bound, limit or 0, len(pairs) // 2, *pairs]
        reply = await self._run(_scripts.HISTORY, self._read_keys(base, nshex), args)
        return [loaded_checkpoint(thread_id, checkpoint_ns, r) for r in reply]

    async def thread_namespaces(self, thread_id: str) -> list[str]:
        """The namespaces with a head in the thread (the fields of its head hash), sorted."""
        check_id("thread id", thread_id)
        base = self._base(thread_id)
        reply = await self._run(_scripts.THREAD_NAMESPACES, [f"{base}:head"], [])
        return sorted(untext(bytes.fromhex(untext(n))) for n in reply)

    async def delete_thread(self, thread_id: str) -> None:
        """Remove every key of the thread and its inbox entries, atomically (its lease hash
        stays, so fencing tokens keep growing)."""
        check_id("thread id", thread_id)
        base = self._base(thread_id)
        keys = [f"{base}:head", f"{base}:ns", self._threads_key, *self._inbox_keys(base)]
        args = [base, text(thread_id), self._changes_channel]
        await self._run(_scripts.DELETE_THREAD, keys, args)

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        """Delete old checkpoints (never a head), their writes and orphan blobs, atomically."""
        check_id("thread id", thread_id)
        if keep_last is None and newer_than is None:
            return 0
        cutoff = prune_cutoff(keep_last, newer_than) or ""
        base = self._base(thread_id)
        keys = [f"{base}:head", f"{base}:ns"]
        return int(await self._run(_scripts.PRUNE, keys, [base, keep_last or 0, text(cutoff)]))

    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        """Ids of threads with a checkpoint whose keys have not expired."""
        fetch = -1 if limit is None or limit < 0 else limit
        reply = await self._run(_scripts.LIST_THREADS, [self._threads_key], [fetch])
        ids = [untext(m) for m in reply]
        return ids[:limit] if limit is not None and limit < 0 else ids
