"""`RedisSaver`: checkpoints in plain Redis (>= 6, no modules) through `redis.asyncio`.

Key layout (`P` = the `prefix` option, default "hitl"; `T` = "t" + hex(UTF-8 thread id);
`N` = hex(UTF-8 namespace), "" for the root namespace). Hex encoding keeps hostile ids (quotes,
`*`, `:`, braces, newlines, unicode) out of key syntax, glob patterns and hash tags; the thread
part is the hash tag `{T}`, so all keys of one thread live in one Redis Cluster slot:

    P:threads           zset   thread_id -> expiry in ms since the epoch (+inf without `ttl`)
    P:{T}:head          hash   N -> checkpoint id of the head (room for `lease:N` fields)
    P:{T}:ns            set    every N the thread has keys for
    P:{T}:cp:N          hash   checkpoint_id -> record (`_codec.encode_record`)
    P:{T}:idx:N         zset   checkpoint_id, score 0 (ZREVRANGEBYLEX: newest first, `before`)
    P:{T}:blobs:N       hash   lp(channel) + version -> blob bytes
    P:{T}:w:N           hash   lp(checkpoint_id) + lp(task_id) + idx -> write (msgpack)
    P:{T}:wi:N          zset   the fields of P:{T}:w:N, score 0 (a checkpoint's writes are one
                               ZRANGEBYLEX range: they share the prefix lp(checkpoint_id))

`lp(s)` is `len(s) ":" s` over bytes. Reserved for the next features, without a rewrite:
`P:{T}:lease` / lease fields in the head hash, `P:runs` (a Stream run queue) and `P:inbox`
(a zset of threads with pending interrupts). `P:threads` is the only key outside a thread's slot:
with Redis Cluster it must be sharded before this driver supports clusters.

Every operation is one Lua script (`_scripts`), called with EVALSHA (reloaded on NOSCRIPT), so
each is one round trip and atomic. With `ttl`, each commit refreshes the TTL of every key of the
thread (O(number of namespaces)); `put_writes` refreshes the keys it writes.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncGenerator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import NoScriptError

from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    LoadedCheckpoint,
    WriteRecord,
)
from hitl_async.errors import CheckpointConflictError, SerializationError
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

__all__ = ["RedisSaver", "from_url"]

_SUFFIXES = ("cp", "idx", "blobs", "w", "wi")
_GLOB_SPECIAL = frozenset("*?[]\\")
_Entry = tuple[Redis, AsyncGenerator[None, None]]
_URL_OPTIONS = ("prefix", "ttl", "max_connections", "pool_timeout", "socket_timeout")


def _glob_escape(value: str) -> str:
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in value)


def _utc_iso(moment: datetime) -> str:
    """ISO-8601 in UTC, comparable as text with `CheckpointRecord.created_at`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _ttl_ms(ttl: float | timedelta | None) -> int:
    if ttl is None:
        return 0
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return max(1, round(seconds * 1000))


async def _aclose(generator: AsyncGenerator[None, None]) -> None:
    await generator.aclose()


def _head_arg(head: str | None) -> bytes:
    return b"" if head is None else b"=" + text(head)


def _where(thread_id: str, checkpoint_ns: str) -> str:
    ns = f" (namespace {checkpoint_ns!r})" if checkpoint_ns else ""
    return f"thread {thread_id!r}{ns}"


def _duplicate(record: CheckpointRecord, expected: str | None) -> CheckpointConflictError:
    """A commit of a checkpoint id already stored: a conflict (ids are never reused)."""
    error = CheckpointConflictError(record.thread_id, record.checkpoint_ns, expected, expected)
    error.args = (
        f"{_where(record.thread_id, record.checkpoint_ns)}: checkpoint "
        f"{record.checkpoint_id!r} already exists; a commit never replaces a stored checkpoint. "
        "Reload the thread and retry.",
    )
    return error


class RedisSaver(BaseSaver):
    """Checkpoint store on Redis. Construction does no I/O; connections are made lazily.

    One `redis.asyncio` client with a bounded `BlockingConnectionPool` is created per event
    loop on first use there, so the saver also works from a second loop (e.g. a sync facade's).
    Callers beyond `max_connections` wait up to `pool_timeout` seconds (None: forever) for a
    connection instead of failing.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "hitl",
        max_connections: int = 50,
        pool_timeout: float | None = 60.0,
        ttl: float | timedelta | None = None,
        socket_timeout: float | None = None,
        **redis_options: Any,
    ) -> None:
        if not prefix:
            raise ValueError("prefix must be a non-empty string")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.url = url
        self.prefix = prefix
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.ttl = ttl
        self.socket_timeout = socket_timeout
        self.redis_options = dict(redis_options)
        self._ttl_ms = _ttl_ms(ttl)
        self._clients: dict[asyncio.AbstractEventLoop, _Entry] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisSaver(prefix={self.prefix!r}, max_connections={self.max_connections})"

    # -- connections -------------------------------------------------------------------------

    def _new_client(self) -> Redis:
        options: dict[str, Any] = {"socket_timeout": self.socket_timeout, **self.redis_options}
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=self.pool_timeout,
            **options,
        )
        return Redis(connection_pool=pool)

    async def _closer(
        self, client: Redis, loop: asyncio.AbstractEventLoop
    ) -> AsyncGenerator[None, None]:
        """Closes `client` when finalized: by `aclose()`, or by the loop's `shutdown_asyncgens()`
        (which `asyncio.run()` calls), so a loop that ends never leaves connections behind."""
        try:
            yield
        finally:
            with self._lock:
                entry = self._clients.get(loop)
                if entry is not None and entry[0] is client:
                    del self._clients[loop]
            if not loop.is_closed():
                await client.aclose(close_connection_pool=True)

    @staticmethod
    def _finish(closer: AsyncGenerator[None, None]) -> None:
        """Finalize the closer of a loop closed without `shutdown_asyncgens()`, synchronously."""
        step = closer.aclose()
        try:
            step.send(None)
        except StopIteration:
            pass
        finally:
            step.close()

    async def get_client(self) -> Redis:
        """The `redis.asyncio` client of the running event loop, created on first use there."""
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._clients.get(loop)
            if entry is not None:
                return entry[0]
            stale = [(lp, e) for lp, e in self._clients.items() if lp.is_closed()]
            for lp, _ in stale:
                del self._clients[lp]
            client = self._new_client()
            closer = self._closer(client, loop)
            self._clients[loop] = (client, closer)
        for _, (_, old) in stale:
            self._finish(old)
        await closer.__anext__()  # registers it with the loop's async-generator hooks
        return client

    async def _run(self, script: _scripts.Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = await self.get_client()
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(script.source)
            return await client.evalsha(script.sha, len(keys), *keys, *args)

    async def setup(self) -> None:
        """Load the Lua scripts into the server's script cache (one round trip)."""
        client = await self.get_client()
        async with client.pipeline(transaction=False) as pipe:
            for script in _scripts.SCRIPTS:
                pipe.script_load(script.source)
            await pipe.execute()

    async def aclose(self) -> None:
        """Close the connection pools of every loop (other running loops close theirs soon)."""
        with self._lock:
            entries = list(self._clients.items())
            self._clients.clear()
        current = asyncio.get_running_loop()
        for loop, (_, closer) in entries:
            if loop is current:
                await closer.aclose()
            elif loop.is_closed():
                self._finish(closer)
            else:
                asyncio.run_coroutine_threadsafe(_aclose(closer), loop)

    async def destroy(self) -> None:
        """Delete every key under the prefix (SCAN + UNLINK, never KEYS). For tests and teardown."""
        client = await self.get_client()
        batch: list[bytes] = []
        async for key in client.scan_iter(match=_glob_escape(self.prefix) + ":*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)

    # -- keys --------------------------------------------------------------------------------

    def _base(self, thread_id: str) -> str:
        return f"{self.prefix}:{{t{text(thread_id).hex()}}}"

    @property
    def _threads_key(self) -> str:
        return f"{self.prefix}:threads"

    def _ns_keys(self, base: str, nshex: str) -> dict[str, str]:
        return {s: f"{base}:{s}:{nshex}" for s in _SUFFIXES}

    # -- protocol ----------------------------------------------------------------------------

    async def commit(
        self,
        record: CheckpointRecord,
        blobs: Sequence[BlobRecord],
        *,
        expected_head: str | None,
        writes: Sequence[WriteRecord] = (),
    ) -> None:
        """Store a checkpoint and move the head, atomically, in one EVALSHA; see `BaseSaver`."""
        base = self._base(record.thread_id)
        nshex = text(record.checkpoint_ns).hex()
        k = self._ns_keys(base, nshex)
        keys = [
            f"{base}:head",
            f"{base}:ns",
            k["cp"],
            k["idx"],
            k["blobs"],
            k["w"],
            k["wi"],
            self._threads_key,
        ]
        args: list[Any] = [
            nshex,
            _head_arg(expected_head),
            text(record.checkpoint_id),
            encode_record(record),
            self._ttl_ms,
            text(record.thread_id),
            base,
            len(blobs),
            *blob_args(blobs),
        ]
        for w in writes:
            args.append(write_field(record.checkpoint_id, w.task_id, w.idx))
            args.append(encode_write(w))
        result = await self._run(_scripts.COMMIT, keys, args)
        if result == 2:  # the head matched, but the checkpoint id is already stored
            raise _duplicate(record, expected_head)
        if result != 1:
            actual = untext(result[1:]) if result else None
            raise CheckpointConflictError(
                record.thread_id, record.checkpoint_ns, expected_head, actual
            )

    async def put_writes(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        writes: Sequence[WriteRecord],
    ) -> None:
        """Upsert pending writes by `(task_id, idx)`, in one EVALSHA."""
        if not writes:
            return
        base = self._base(thread_id)
        nshex = text(checkpoint_ns).hex()
        keys = [f"{base}:ns", f"{base}:w:{nshex}", f"{base}:wi:{nshex}"]
        args: list[Any] = [nshex, self._ttl_ms]
        for w in writes:
            args.append(write_field(checkpoint_id, w.task_id, w.idx))
            args.append(encode_write(w))
        await self._run(_scripts.PUT_WRITES, keys, args)

    def _loaded(self, thread_id: str, checkpoint_ns: str, reply: list[Any]) -> LoadedCheckpoint:
        cid_b, value, flat, raw_writes = reply
        cid = untext(cid_b)
        record = decode_record(thread_id, checkpoint_ns, cid, value)
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
        writes = [decode_write(w) for w in raw_writes if w is not None]
        return LoadedCheckpoint(record, blobs, writes)

    def _read_keys(self, base: str, nshex: str) -> list[str]:
        k = self._ns_keys(base, nshex)
        return [k["cp"], k["idx"], k["blobs"], k["w"], k["wi"]]

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        """The head (or `checkpoint_id`) with its blobs and writes, in one EVALSHA."""
        base = self._base(thread_id)
        nshex = text(checkpoint_ns).hex()
        k = self._ns_keys(base, nshex)
        keys = [f"{base}:head", k["cp"], k["blobs"], k["w"], k["wi"]]
        reply = await self._run(_scripts.LOAD, keys, [nshex, text(checkpoint_id or "")])
        if reply is None:
            return None
        return self._loaded(thread_id, checkpoint_ns, reply)

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
        return [self._loaded(thread_id, checkpoint_ns, r) for r in reply]

    async def delete_thread(self, thread_id: str) -> None:
        """Remove every key of the thread, atomically."""
        base = self._base(thread_id)
        keys = [f"{base}:head", f"{base}:ns", self._threads_key]
        await self._run(_scripts.DELETE_THREAD, keys, [base, text(thread_id)])

    async def prune(
        self,
        thread_id: str,
        *,
        keep_last: int | None = None,
        newer_than: datetime | None = None,
    ) -> int:
        """Delete old checkpoints (never a head), their writes and orphan blobs, atomically."""
        if keep_last is None and newer_than is None:
            return 0
        if keep_last is not None and keep_last < 1:
            raise ValueError(f"keep_last must be at least 1, got {keep_last}")
        cutoff = _utc_iso(newer_than) if newer_than is not None else ""
        base = self._base(thread_id)
        keys = [f"{base}:head", f"{base}:ns"]
        return int(await self._run(_scripts.PRUNE, keys, [base, keep_last or 0, text(cutoff)]))

    async def list_threads(self, *, limit: int | None = None) -> list[str]:
        """Ids of threads with a checkpoint whose keys have not expired."""
        fetch = -1 if limit is None or limit < 0 else limit
        reply = await self._run(_scripts.LIST_THREADS, [self._threads_key], [fetch])
        ids = [untext(m) for m in reply]
        return ids[:limit] if limit is not None and limit < 0 else ids


def _parse_url(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split the driver's own query options (`prefix`, `ttl`, ...) off a Redis URL.

    Explicit keyword options win over the URL's. Everything else is left for redis-py.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ValueError(f"not a Redis URL (redis://, rediss://, unix://): {url!r}")
    kept: list[tuple[str, str]] = []
    found: dict[str, Any] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _URL_OPTIONS:
            kept.append((name, value))
        elif name == "prefix":
            found[name] = value
        elif name == "max_connections":
            found[name] = int(value)
        else:  # ttl, pool_timeout, socket_timeout: seconds, or empty/"none" for unset
            found[name] = None if value.lower() in {"", "none"} else float(value)
    found.update(options)
    clean = urlunsplit(parts._replace(query=urlencode(kept)))
    return clean, found


def from_url(url: str, **options: Any) -> RedisSaver:
    """A `RedisSaver` for `redis://`, `rediss://` or `unix://` URLs (the `connect()` entry point).

    Driver options come as keywords or URL query parameters: `prefix`, `max_connections`,
    `pool_timeout`, `ttl` (seconds), `socket_timeout`; other keywords go to redis-py.
    """
    clean, opts = _parse_url(url, options)
    return RedisSaver(clean, **opts)
