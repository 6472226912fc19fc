"""`RedisSaver`: checkpoints in plain Redis (>= 6, no modules) through `redis.asyncio`.

Key layout (`P` = the `prefix` option, default "hitl"; `T` = "t" + hex(UTF-8 thread id);
`N` = hex(UTF-8 namespace), "" for the root namespace; `Q`, `R` = hex of a queue name, a run
request id). Hex encoding keeps hostile ids (quotes, `*`, `:`, braces, newlines, unicode) out
of key syntax, glob patterns and hash tags; the thread part is the hash tag `{T}`, so all keys
of one thread live in one Redis Cluster slot:

    P:threads           zset   thread_id -> expiry in ms since the epoch (+inf without `ttl`)
    P:{T}:head          hash   N -> checkpoint id of the head
    P:{T}:ns            set    every N the thread has keys for
    P:{T}:cp:N          hash   checkpoint_id -> record (`_codec.encode_record`)
    P:{T}:idx:N         zset   checkpoint_id, score 0 (ZREVRANGEBYLEX: newest first, `before`)
    P:{T}:blobs:N       hash   lp(channel) + version -> blob bytes
    P:{T}:w:N           hash   lp(checkpoint_id) + lp(task_id) + idx -> write (msgpack)
    P:{T}:wi:N          zset   the fields of P:{T}:w:N, score 0 (a checkpoint's writes are one
                               ZRANGEBYLEX range: they share the prefix lp(checkpoint_id))

Coordination (leases, the inbox index, the run queue):

    P:{T}:lease         hash   owner, token, expires (ms, Redis TIME), graph, released (0/1).
                               Never deleted but by `destroy()`: `token` only grows (HINCRBY).
    P:leases            zset   T -> expires, for unreleased leases only (`expired_leases`)
    P:inbox             zset   M, score 0: the inbox index in (created_at, thread_id,
                               interrupt_id) order, M = `_codec.lex_member(...)` of that triple
                               (ZRANGEBYLEX gives the order, `(M` the keyset page after M)
    P:inbox:data        hash   M -> entry (`_codec.encode_entry`: node and graph readable by Lua)
    P:inbox:due         zset   M -> deadline in seconds (entries with a deadline only)
    P:{T}:inbox         set    the thread's members M (what a replace or delete removes)
    P:run:R             hash   one run request (`_codec.request_fields`); claim in ms
    P:runs:Q            zset   M = lex_member(created_at, id), score 0: the queue's pending
                               (queued or running) requests, oldest first
    P:{T}:runs          set    R of the thread's pending requests (any queue)
    P:q:Q               stream wake-ups of queue Q (MAXLEN ~1000), read with XREAD BLOCK

plus the pub/sub channel `P:changes` (message: a thread id) published by `commit`,
`put_writes`, `release_lease` and `delete_thread`.

`lp(s)` is `len(s) ":" s` over bytes. `P:threads`, `P:leases`, `P:inbox*`, `P:run*` and
`P:q:*` are outside a thread's slot: with Redis Cluster they must be sharded (or hash-tagged
together) before this driver supports clusters.

Every operation is one Lua script (`_scripts`), called with EVALSHA (reloaded on NOSCRIPT), so
each is one round trip and atomic.

Group commit (`group_commit=True`, the default): many runs of one process call the store at
once, and a round trip (with redis-py's per-command cost) was the price of every call. The
script calls a loop makes while another of its calls is under way go to a `Batcher`, which
sends what is queued as one non-transactional pipeline of EVALSHA on one pooled connection
(`_pipeline.ScriptPipeline`), at most `max_batch` calls per round trip and
`batches_in_flight` round trips at once. Scripts stay atomic one by one (Redis runs each
alone) and nothing is atomic across a batch: the calls of a batch are independent callers'.
Each caller gets its own reply or its own error (a conflict or a lost lease fails that call
only); NOSCRIPT is cured with a SCRIPT LOAD in front of the refused calls; a dropped
connection resends, per the client's `Retry`, only the calls whose replies were not read,
then fails them with `StoreUnavailableError`. A call made while none is under way goes out at
once from the caller's task, so a lone call neither waits nor pays a task switch.

With `ttl`, each commit refreshes the TTL of every key of the thread (O(number of namespaces));
`put_writes` refreshes the keys it writes. Lease hashes get no TTL (their token must never
restart); inbox entries of a thread whose keys expired are dropped from the index by the next
`list_inbox` that meets them.

Fencing: `commit` and `put_writes` take the lease key and token; the script checks token,
`released` and expiry (by Redis TIME) before anything else, so a run that lost its lease writes
nothing (`LeaseLostError`). With `inbox=`, the same script replaces the thread's inbox entries.

Runs: `acquire_and_load` takes the lease and reads the starting checkpoint in one script, and
`commit_many` writes a chain of commits (and the release of the lease, with `release=True`)
with the same script as `commit`: it checks the lease once and every commit of the chain
(heads, ids) before writing anything, so a refused chain stores nothing, then refreshes TTLs,
the threads index and publishes the change once for the whole chain.

Run queue: the claim decision is a Lua script over `P:runs:Q` (first runnable in (created_at,
id) order; a thread is busy while one of `P:{T}:runs` is running with a live claim), and the
stream `P:q:Q` only wakes waiting workers. A Streams consumer group was not used for delivery
because its model differs from the protocol's: XREADGROUP hands out entries in stream order to
one consumer each and cannot skip an entry whose thread is busy and come back to it later (it
stays pending to whoever read it); XAUTOCLAIM takes over by idle time since delivery, not by the
claim expiry `renew_claim` extends on the store clock; and giving a request back (`queued`) or
cancelling a queued one would need re-adding or deleting entries in step with the PEL. One
script over a zset gives exactly the protocol's semantics, and Redis runs scripts one at a
time, so concurrent claimers never get the same request. `wait_for_work` first asks (one
script) whether a request is runnable, and otherwise blocks on the stream from the id it saw
(XREAD BLOCK never misses an entry added after that check, unlike pub/sub), at most until the
earliest live claim in the queue expires. `enqueue` and `finish_request` XADD wake-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
import uuid
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast
from urllib.parse import urlencode, urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    Commit,
    InboxEntry,
    Lease,
    LoadedCheckpoint,
    RunRequest,
    WriteRecord,
    prune_cutoff,
)
from hitl_async.checkpoint.batching import Batcher
from hitl_async.checkpoint.capabilities import (
    ChangeFeed,
    InboxQuery,
    InboxStore,
    LeaseStore,
    RunQuery,
    RunQueueStore,
    run_order,
)
from hitl_async.checkpoint.ids import check_id
from hitl_async.checkpoint.lifecycle import (
    after_fork_in_child,
    creation_site,
    forked_away,
    warn_unclosed,
)
from hitl_async.checkpoint.options import url_options
from hitl_async.checkpoint.releases import PendingReleases
from hitl_async.errors import (
    CheckpointConflictError,
    CheckpointCorruptError,
    LeaseLostError,
    SerializationError,
    StoreLostError,
    StoreUnavailableError,
    ThreadBusyError,
)
from hitl_async_redis import _scripts
from hitl_async_redis._cache import RedisCache
from hitl_async_redis._codec import (
    blob_args,
    canonical,
    decode_entry,
    decode_record,
    decode_request,
    decode_write,
    encode_entry,
    encode_record,
    encode_write,
    hexid,
    lex_member,
    request_fields,
    text,
    untext,
    write_field,
)
from hitl_async_redis._notify import Notifier
from hitl_async_redis._pipeline import Call, ScriptPipeline

__all__ = ["RedisSaver", "RedisUrlOptions", "from_url"]

_SUFFIXES = ("cp", "idx", "blobs", "w", "wi")
_GLOB_SPECIAL = frozenset("*?[]\\")


def _glob_escape(value: str) -> str:
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in value)


def _ttl_ms(ttl: float | timedelta | None) -> int:
    if ttl is None:
        return 0
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return max(1, round(seconds * 1000))


def _head_arg(head: str | None) -> bytes:
    return b"" if head is None else b"=" + text(head)


def _ms(seconds: float) -> int:
    """A duration in whole milliseconds (Redis TIME and the stored expiries are in ms)."""
    if not math.isfinite(seconds):
        raise ValueError(f"ttl must be a finite number of seconds, got {seconds!r}")
    return round(seconds * 1000)


def _score(value: float) -> bytes:
    """A float as a Redis score argument (`repr` round-trips; inf as Redis spells it)."""
    if math.isinf(value):
        return b"+inf" if value > 0 else b"-inf"
    return repr(float(value)).encode()


def _lost(thread_id: str, token: int, reply: list[Any]) -> LeaseLostError:
    current = reply[1]
    return LeaseLostError(thread_id, token, int(current) if current else None)


def _where(thread_id: str, checkpoint_ns: str) -> str:
    ns = f" (namespace {checkpoint_ns!r})" if checkpoint_ns else ""
    return f"thread {thread_id!r}{ns}"


class _ThreadKeys(NamedTuple):
    """A thread's id and key names, built once per thread: every call of a run needs them."""

    tid: bytes  # text(thread_id)
    base: str  # P:{T}
    member: bytes  # T, the thread's member in P:leases
    lease: str  # P:{T}:lease
    inbox: tuple[str, ...]  # P:{T}:inbox, P:inbox, P:inbox:data, P:inbox:due


_THREAD_KEYS_CACHED = 4096  # threads whose keys a saver keeps (then it starts over)


class _LoopState:
    """What one event loop uses: its client, the closer that closes it with the loop, the
    script pipeline over the client's pool, (with group commit) the batcher feeding it, and
    how many script calls are under way (`active`), so a lone call skips the batcher."""

    __slots__ = (
        "active",
        "batcher",
        "client",
        "closer",
        "closing",
        "drained",
        "identifying",
        "pipeline",
    )

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.pipeline = ScriptPipeline(client)
        self.batcher: Batcher[Call, Any] | None = None
        self.closer: AsyncGenerator[None, None] | None = None
        self.closing: asyncio.Future[None] | None = None  # set once `_shut` began
        self.active = 0
        self.drained: asyncio.Future[None] | None = None  # set when `active` drops to 0
        self.identifying = asyncio.Lock()  # one `_identify` at a time in this loop

    async def wait_idle(self) -> None:
        """Until every call under way (alone or batched) is answered."""
        while self.active:
            self.drained = asyncio.get_running_loop().create_future()
            await self.drained
        if self.batcher is not None:
            await self.batcher.wait_idle()


async def _closer(
    lock: threading.Lock,
    clients: dict[asyncio.AbstractEventLoop, _LoopState],
    notifiers: dict[asyncio.AbstractEventLoop, Notifier],
    state: _LoopState,
    loop: asyncio.AbstractEventLoop,
) -> AsyncGenerator[None, None]:
    """Closes the loop's client when finalized: by `aclose()`, or by the loop's
    `shutdown_asyncgens()` (which `asyncio.run()` calls), so a loop that ends never leaves
    connections behind. (It holds no reference to the saver, so a saver dropped without
    `aclose()` can be collected.)"""
    try:
        yield
    finally:
        await _shut(lock, clients, notifiers, state, loop)


async def _shut(
    lock: threading.Lock,
    clients: dict[asyncio.AbstractEventLoop, _LoopState],
    notifiers: dict[asyncio.AbstractEventLoop, Notifier],
    state: _LoopState,
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Forget the loop's client and close it, with its notifier, once batches in flight are
    answered. Once only: the closer's finalization and a task of `_close_soon` may both come
    here, and the second waits for the first. In a closed loop it only forgets (nothing can
    be awaited there)."""
    if state.closing is not None:
        if not loop.is_closed():
            await state.closing
        return
    state.closing = done = loop.create_future()
    try:
        notifier = None
        with lock:
            entry = clients.get(loop)
            if entry is state:
                del clients[loop]
            if entry is None or entry is state:  # (`aclose()` removed it already)
                notifier = notifiers.pop(loop, None)
        if not loop.is_closed():
            await state.wait_idle()
            if notifier is not None:
                await notifier.aclose()
            await state.client.aclose(close_connection_pool=True)
    finally:
        if not done.done():
            done.set_result(None)


_closing: set[asyncio.Task[None]] = set()  # the tasks of `_close_soon` (asyncio keeps weak refs)


def _close_soon(
    loop: asyncio.AbstractEventLoop, shut: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Run `shut()` in `loop` (open, running or not) from any thread. The coroutine is made in
    the loop when it runs, so a loop that is closed without running again leaves no coroutine
    that was never awaited (its connections are then released by the garbage collector)."""

    def start() -> None:
        task = loop.create_task(shut())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    with contextlib.suppress(RuntimeError):  # closed meanwhile
        loop.call_soon_threadsafe(start)


def _dedicated_client(url: str, options: dict[str, Any]) -> Redis:
    """A client of its own for one blocking reader (pub/sub, XREAD BLOCK): no socket timeout, so
    an idle block is not an error, and it never takes a pool connection."""
    return Redis.from_url(url, **{**options, "socket_timeout": None})


def _release_clients(
    lock: threading.Lock,
    clients: dict[asyncio.AbstractEventLoop, _LoopState],
    notifiers: dict[asyncio.AbstractEventLoop, Notifier],
    what: str,
    site: str,
) -> None:
    """The finalizer of a saver collected without `aclose()`: warn, then close every loop's
    client in its own loop when that loop next runs (or forget it, when that loop is gone)."""
    if not clients:
        return
    warn_unclosed(what, site)
    for loop, state in list(clients.items()):
        closer = state.closer
        if closer is None:
            continue
        if loop.is_closed():
            with contextlib.suppress(Exception):
                RedisSaver._finish(closer)
        else:
            _close_soon(loop, functools.partial(_shut, lock, clients, notifiers, state, loop))


def _forget_parent(saver: RedisSaver) -> None:
    """In a forked child: drop the parent's clients (their sockets are the parent's: never
    closed here) so the child connects afresh on first use."""
    forked_away.append((dict(saver._clients), dict(saver._notifiers)))
    saver._clients.clear()
    saver._notifiers.clear()
    saver._lock = threading.Lock()


class RedisSaver(BaseSaver, LeaseStore, InboxStore, RunQueueStore, ChangeFeed, RedisCache):
    """Checkpoint store on Redis. Construction does no I/O; connections are made lazily.

    One `redis.asyncio` client with a bounded `BlockingConnectionPool` is created per event
    loop on first use there, so the saver also works from a second loop (e.g. a sync facade's).
    Callers beyond `max_connections` wait up to `pool_timeout` seconds (None: forever) for a
    connection instead of failing. Waits (`wait_for_work`, `wait_for_change`) use dedicated
    connections of the loop's `Notifier` instead, opened on the first wait.

    Group commit (see the module docstring) is per event loop too: `group_commit=False` sends
    every call in a round trip of its own; `max_batch` caps the calls of one round trip and
    `batches_in_flight` the round trips of batched calls under way at once (so script calls
    hold at most `batches_in_flight` + 1 connections).
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
        group_commit: bool = True,
        max_batch: int = 32,
        batches_in_flight: int = 4,
        **redis_options: Any,
    ) -> None:
        if not prefix:
            raise ValueError("prefix must be a non-empty string")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        if max_batch < 1 or batches_in_flight < 1:
            raise ValueError(
                f"max_batch and batches_in_flight must be at least 1, got {max_batch} and "
                f"{batches_in_flight}"
            )
        self.url = url
        self.prefix = prefix
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.ttl = ttl
        self.socket_timeout = socket_timeout
        self.group_commit = bool(group_commit)
        self.max_batch = max_batch
        self.batches_in_flight = batches_in_flight
        self.redis_options = dict(redis_options)
        self._ttl_ms = _ttl_ms(ttl)
        self._clients: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._notifiers: dict[asyncio.AbstractEventLoop, Notifier] = {}
        self._thread_keys: dict[str, _ThreadKeys] = {}
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(
            self,
            _release_clients,
            self._lock,
            self._clients,
            self._notifiers,
            f"RedisSaver(prefix={prefix!r})",
            creation_site(),
        )
        self._finalizer.atexit = False
        after_fork_in_child(self, _forget_parent)
        self._store_key = f"{prefix}:store"
        self._pending_releases = PendingReleases()
        self._store_id: bytes | None = None  # learned on first use (`_identify`)

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

    async def _state(self) -> _LoopState:
        """The running loop's client, pipeline and batcher, created on first use there."""
        loop = asyncio.get_running_loop()
        state = self._clients.get(loop)  # (a dict read is atomic: no lock on the hot path)
        if state is not None:
            return state
        with self._lock:
            state = self._clients.get(loop)
            if state is not None:
                return state
            stale = [(lp, e) for lp, e in self._clients.items() if lp.is_closed()]
            for lp, _ in stale:
                del self._clients[lp]
            state = _LoopState(self._new_client())
            if self.group_commit:
                state.batcher = Batcher(
                    functools.partial(_send_weakly, weakref.ref(self), state.pipeline),
                    concurrency=self.batches_in_flight,
                    max_batch=self.max_batch,
                )
            closer = state.closer = _closer(self._lock, self._clients, self._notifiers, state, loop)
            self._clients[loop] = state
        for _, old in stale:
            if old.closer is not None:
                self._finish(old.closer)
        await closer.__anext__()  # registers it with the loop's async-generator hooks
        return state

    async def get_client(self) -> Redis:
        """The `redis.asyncio` client of the running event loop, created on first use there."""
        return (await self._state()).client

    def batcher(self) -> Batcher[Call, Any] | None:
        """The running loop's group-commit batcher (None before first use or without group
        commit); its `batches` and `requests` counters show how calls were coalesced."""
        state = self._clients.get(asyncio.get_running_loop())
        return None if state is None else state.batcher

    def _dedicated_client(self) -> Redis:
        """A client of its own for one blocking reader (see `_dedicated_client`)."""
        return _dedicated_client(self.url, self.redis_options)

    async def _notifier(self) -> Notifier:
        """The wake-up sources of the running loop, closed with the loop's client."""
        await self.get_client()
        loop = asyncio.get_running_loop()
        with self._lock:
            notifier = self._notifiers.get(loop)
            if notifier is None:
                factory = functools.partial(_dedicated_client, self.url, self.redis_options)
                notifier = Notifier(factory, self._changes_channel)
                self._notifiers[loop] = notifier
        return notifier

    async def _run(self, script: _scripts.Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Call `script` (EVALSHA) and return its reply.

        With group commit, a call made while another of this loop's calls is under way joins
        the batcher and shares a round trip (a pipeline, not a transaction) with the others; a
        call made while none is goes out at once from the caller's task, so a lone call costs
        no task switch."""
        state = await self._state()
        if self._store_id is None:
            await self._identify(state)
        call = (script, [*keys, self._store_key], [*args, self._store_id])
        state.active += 1
        try:
            if state.active > 1 and state.batcher is not None:
                return await state.batcher.submit(call)
            outcome = (await self._send(state.pipeline, [call]))[0]
        finally:
            state.active -= 1
            if not state.active and state.drained is not None and not state.drained.done():
                state.drained.set_result(None)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def _identify(self, state: _LoopState) -> None:
        """Learn the store's id (giving a new store one): every later script checks it, so an
        emptied or replaced Redis is a `StoreLostError`, never a silent fresh start."""
        async with state.identifying:  # one at a time in this loop
            if self._store_id is not None:
                return  # (learned while this call waited)
            call = (_scripts.IDENTIFY, [self._store_key], [uuid.uuid4().hex])
            found = (await self._send(state.pipeline, [call]))[0]
            if isinstance(found, BaseException):
                raise found
            self._store_id = bytes(found)

    def _lost(self, found: bytes) -> StoreLostError:
        parts = urlsplit(self.url)
        host = f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"
        where = f"Redis {host} (prefix {self.prefix!r})"
        if not found:
            cause = (
                "it was emptied (a restart without persistence, a FLUSHDB/FLUSHALL, or its keys "
                "deleted) while this saver was using it"
            )
        else:
            cause = (
                f"it now holds another store (id {found.decode(errors='replace')!r}, not "
                f"{(self._store_id or b'').decode(errors='replace')!r})"
            )
        return StoreLostError(where, cause)

    async def _send(self, pipeline: ScriptPipeline, calls: list[Call]) -> list[Any]:
        """One round trip for `calls` (see `ScriptPipeline`): one outcome per call, failures of
        the store mapped to a `StoreUnavailableError` of each call's own."""
        try:
            outcomes = await pipeline.execute(calls)
        except Exception as exc:
            if self._unavailable(exc) is None:
                raise
            return [self._mapped(exc) for _ in calls]
        return [self._mapped(o) if isinstance(o, Exception) else o for o in outcomes]

    def _mapped(self, exc: Exception) -> Exception:
        """`exc`, or the `StoreUnavailableError` / `StoreLostError` it stands for (caused by
        it)."""
        if isinstance(exc, ResponseError) and str(exc).startswith(_scripts.STORE_LOST):
            lost = self._lost(str(exc)[len(_scripts.STORE_LOST) + 1 :].encode())
            lost.__cause__ = exc
            lost.__suppress_context__ = True
            return lost
        mapped = self._unavailable(exc)
        if mapped is None:
            return exc
        mapped.__cause__ = exc
        mapped.__suppress_context__ = True
        return mapped

    def _unavailable(self, exc: Exception) -> StoreUnavailableError | None:
        """`StoreUnavailableError` for a failure of the server or the connection (dropped,
        killed, refused, timed out, loading its data set; out of memory, a read-only replica,
        refusing writes after a failed save; a refused login, a database number it lacks); None
        for any other error. A connection that failed is dropped by the pool, so the next call
        (the engine's retry) gets a new one."""
        transient = True
        if isinstance(exc, AuthenticationError | AuthorizationError):
            cause = "the server refused the login: check the user and password in the URL"
            transient = False
        elif isinstance(exc, ResponseError) and "DB index is out of range" in str(exc):
            db = urlsplit(self.url).path.lstrip("/")
            cause = (
                f"the server has no database {db or 'of that number'}: use a number below its "
                "`databases` setting (16 by default) in the URL"
            )
            transient = False
        elif isinstance(exc, RedisConnectionError):  # includes BusyLoadingError
            cause = "the connection to the server broke or cannot be made"
        elif isinstance(exc, RedisTimeoutError | TimeoutError):
            cause = "the server did not answer in time"
        elif isinstance(exc, ReadOnlyError):
            cause, transient = "the server is a read-only replica", False
        elif isinstance(exc, ResponseError) and str(exc).startswith(("OOM", "MISCONF")):
            cause, transient = "the server refuses writes (out of memory, or a failed save)", False
        elif isinstance(exc, OSError) and not isinstance(exc, StoreUnavailableError):
            cause = "the server cannot be reached"
        else:
            return None
        parts = urlsplit(self.url)
        where = f"Redis {parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path}"
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return StoreUnavailableError(where, f"{cause} ({detail})", transient=transient)

    async def setup(self) -> None:
        """Load the Lua scripts into the server's script cache and learn the store's id."""
        client = await self.get_client()
        async with client.pipeline(transaction=False) as pipe:
            for script in _scripts.SCRIPTS:
                pipe.script_load(script.source)
            await pipe.execute()
        if self._store_id is None:
            await self._identify(await self._state())

    async def aclose(self) -> None:
        """Close the connection pools of every loop (other running loops close theirs soon)."""
        with self._lock:
            entries = list(self._clients.items())
            self._clients.clear()
        current = asyncio.get_running_loop()
        for loop, state in entries:
            closer = state.closer
            if closer is None:
                continue
            if loop is current:
                await closer.aclose()
            elif loop.is_closed():
                self._finish(closer)
            else:
                shut = functools.partial(
                    _shut, self._lock, self._clients, self._notifiers, state, loop
                )
                _close_soon(loop, shut)

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
        self._store_id = None  # a new, empty store from now on

    # -- keys --------------------------------------------------------------------------------

    def _thread(self, thread_id: str) -> _ThreadKeys:
        """The thread's id bytes and key names (cached)."""
        keys = self._thread_keys.get(thread_id)
        if keys is None:
            if len(self._thread_keys) >= _THREAD_KEYS_CACHED:
                self._thread_keys.clear()
            tid = text(thread_id)
            tag = f"t{tid.hex()}"
            base = f"{self.prefix}:{{{tag}}}"
            inbox = tuple(self._inbox_keys(base))
            keys = _ThreadKeys(tid, base, tag.encode(), f"{base}:lease", inbox)
            self._thread_keys[thread_id] = keys
        return keys

    def _base(self, thread_id: str) -> str:
        return self._thread(thread_id).base

    @property
    def _threads_key(self) -> str:
        return f"{self.prefix}:threads"

    @staticmethod
    def _ns_keys(base: str, nshex: str) -> list[str]:
        """The namespace's `cp idx blobs w wi` keys."""
        return [f"{base}:{s}:{nshex}" for s in _SUFFIXES]

    @property
    def _changes_channel(self) -> str:
        return f"{self.prefix}:changes"

    @property
    def _leases_key(self) -> str:
        return f"{self.prefix}:leases"

    def _inbox_keys(self, base: str) -> list[str]:
        """The thread's member set, then the global index, entry data and deadline keys."""
        p = self.prefix
        return [f"{base}:inbox", f"{p}:inbox", f"{p}:inbox:data", f"{p}:inbox:due"]

    @staticmethod
    def _token(lease: Lease | None) -> bytes:
        return b"" if lease is None else str(int(lease.token)).encode()

    @staticmethod
    def _check_inbox(thread_id: str, inbox: Sequence[InboxEntry]) -> None:
        for e in inbox:
            if e.thread_id != thread_id:
                raise ValueError(
                    f"inbox entry {e.interrupt_id!r} is of thread {e.thread_id!r}, "
                    f"not {thread_id!r}"
                )

    @classmethod
    def _inbox_args(cls, thread_id: str, inbox: Sequence[InboxEntry] | None) -> list[Any]:
        """`[n, (member, data, deadline or "")*n]`; n = -1 keeps the inbox as it is."""
        if inbox is None:
            return [-1]
        cls._check_inbox(thread_id, inbox)
        args: list[Any] = [len(inbox)]
        for e in inbox:
            deadline = e.deadline
            due = b"" if deadline is None or math.isnan(deadline) else _score(deadline)
            args += [lex_member(e.created_at, e.thread_id, e.interrupt_id), encode_entry(e), due]
        return args

    # -- protocol ----------------------------------------------------------------------------

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
            self._token(lease),
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
                self._check_inbox(thread_id, c.inbox)
            inbox_args = self._inbox_args(thread_id, c.inbox if i == last_inbox else None)
            args += [
                nshexes[i],
                _head_arg(c.expected_head),
                text(record.checkpoint_id),
                encode_record(record),
                len(c.blobs),
                inbox_args[0],
                len(c.writes),
                *blob_args(c.blobs),
                *inbox_args[1:],
            ]
            for w in c.writes:
                args.append(write_field(record.checkpoint_id, w.task_id, w.idx))
                args.append(encode_write(w))
        reply = await self._run(_scripts.COMMIT, keys, args)
        if reply == 1:
            return
        if reply[0] == 3:
            assert lease is not None
            raise _lost(thread_id, lease.token, reply)
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
            self._token(lease),
            t.tid,
            self._changes_channel,
            *self._inbox_args(thread_id, inbox),
        ]
        for w in writes:
            args.append(write_field(checkpoint_id, w.task_id, w.idx))
            args.append(encode_write(w))
        result = await self._run(_scripts.PUT_WRITES, keys, args)
        if isinstance(result, list):
            assert lease is not None
            raise _lost(thread_id, lease.token, result)

    def _loaded(self, thread_id: str, checkpoint_ns: str, reply: list[Any]) -> LoadedCheckpoint:
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

    def _read_keys(self, base: str, nshex: str) -> list[str]:
        return self._ns_keys(base, nshex)

    def _load_call(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None
    ) -> tuple[list[str], list[Any]]:
        """KEYS `head cp blobs w wi` and ARGV `ns cid` of the Lua `load_checkpoint`."""
        base = self._base(thread_id)
        nshex = text(checkpoint_ns).hex()
        cp, _idx, blobs, w, wi = self._ns_keys(base, nshex)
        return [f"{base}:head", cp, blobs, w, wi], [nshex, text(checkpoint_id or "")]

    async def load(
        self, thread_id: str, checkpoint_ns: str = "", checkpoint_id: str | None = None
    ) -> LoadedCheckpoint | None:
        """The head (or `checkpoint_id`) with its blobs and writes, in one EVALSHA."""
        check_id("thread id", thread_id)
        keys, args = self._load_call(thread_id, checkpoint_ns, checkpoint_id)
        reply = await self._run(_scripts.LOAD, keys, args)
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
        return [self._loaded(thread_id, checkpoint_ns, r) for r in reply]

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

    # -- coordination: leases ------------------------------------------------------------------

    def _lease_keys(self, thread_id: str) -> tuple[list[str], bytes]:
        t = self._thread(thread_id)
        return [t.lease, self._leases_key], t.member

    @staticmethod
    def _acquired(thread_id: str, owner: str, graph: str, reply: Sequence[Any]) -> Lease:
        """The lease of an acquire reply `{1, token, expires}`; `ThreadBusyError` for
        `{0, holder, expires}`."""
        ok, value, expires = reply[:3]
        if not ok:
            raise ThreadBusyError(thread_id, untext(value), int(expires) / 1000)
        return Lease(thread_id, owner, int(value), int(expires) / 1000, graph)

    async def acquire_lease(
        self, thread_id: str, owner: str, ttl: float, *, graph: str = ""
    ) -> Lease:
        """Take the lease with the next token, or `ThreadBusyError`; one EVALSHA."""
        check_id("thread id", thread_id)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        keys, member = self._lease_keys(thread_id)
        args = [member, text(owner), _ms(ttl), text(graph)]
        reply = await self._run(_scripts.ACQUIRE_LEASE, keys, args)
        return self._acquired(thread_id, owner, graph, reply)

    async def acquire_and_load(
        self,
        thread_id: str,
        owner: str,
        ttl: float,
        *,
        graph: str = "",
        checkpoint_ns: str = "",
        checkpoint_id: str | None = None,
    ) -> tuple[Lease, LoadedCheckpoint | None]:
        """Take the lease (or `ThreadBusyError`, nothing read) and load the head (or
        `checkpoint_id`) of `checkpoint_ns`, atomically in one EVALSHA."""
        check_id("thread id", thread_id)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        lease_keys, member = self._lease_keys(thread_id)
        load_keys, load_args = self._load_call(thread_id, checkpoint_ns, checkpoint_id)
        args = [member, text(owner), _ms(ttl), text(graph), *load_args]
        reply = await self._run(_scripts.ACQUIRE_AND_LOAD, [*lease_keys, *load_keys], args)
        lease = self._acquired(thread_id, owner, graph, reply)
        raw = reply[3] if len(reply) > 3 else None
        return lease, None if raw is None else self._loaded(thread_id, checkpoint_ns, raw)

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend the lease from now (store clock), or `LeaseLostError`."""
        keys, member = self._lease_keys(lease.thread_id)
        args = [member, str(int(lease.token)), _ms(ttl)]
        reply = await self._run(_scripts.RENEW_LEASE, keys, args)
        if not reply[0]:
            raise _lost(lease.thread_id, lease.token, reply)
        return replace(lease, expires_at=int(reply[1]) / 1000)

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up if its token is still the thread's; if the store cannot be reached,
        it is released again before this saver next acquires the thread."""
        try:
            await self._release_lease_once(lease)
        except Exception:
            self._pending_releases.failed(lease)
            raise

    async def _release_lease_once(self, lease: Lease) -> None:
        """Mark the lease released if its token is still current (and notify waiters)."""
        keys, member = self._lease_keys(lease.thread_id)
        args = [member, str(int(lease.token)), self._changes_channel, text(lease.thread_id)]
        await self._run(_scripts.RELEASE_LEASE, keys, args)

    async def expired_leases(self, *, graph: str | None = None, limit: int = 100) -> list[Lease]:
        """Unreleased leases past their expiry, oldest first, from the `P:leases` zset."""
        if limit <= 0:
            return []
        args = [self.prefix, b"0" if graph is None else b"1", text(graph or ""), limit]
        flat = await self._run(_scripts.EXPIRED_LEASES, [self._leases_key], args)
        out: list[Lease] = []
        for i in range(0, len(flat), 5):
            member, owner, token, expires, lease_graph = flat[i : i + 5]
            thread_id = untext(bytes.fromhex(member[1:].decode()))
            out.append(
                Lease(
                    thread_id, untext(owner), int(token), int(expires) / 1000, untext(lease_graph)
                )
            )
        return out

    # -- coordination: the inbox index ---------------------------------------------------------

    async def list_inbox(self, query: InboxQuery = InboxQuery()) -> list[InboxEntry]:  # noqa: B008
        """Pending interrupts from the index keys only (never checkpoints); one EVALSHA."""
        thread_id, node, graph = query.thread_id, query.node, query.graph
        due_before, after, limit = query.due_before, query.after, query.limit
        if limit <= 0 or (due_before is not None and not due_before > -math.inf):
            return []  # (NaN or -inf: no deadline is before it)
        keys = self._inbox_keys(self._base(thread_id or ""))
        keys = keys[1:] + ([keys[0]] if thread_id is not None else [])
        args = [
            self.prefix,
            b"" if after is None else lex_member(*after).encode(),
            limit,
            b"0" if node is None else b"1",
            text(node or ""),
            b"0" if graph is None else b"1",
            text(graph or ""),
            b"" if due_before is None else _score(due_before),
        ]
        reply = await self._run(_scripts.LIST_INBOX, keys, args)
        return [_inbox_entry(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]

    # -- coordination: the run queue -----------------------------------------------------------

    def _run_key(self, request_id: str) -> str:
        return f"{self.prefix}:run:{hexid(request_id)}"

    def _queue_keys(self, queue: str) -> tuple[str, str]:
        """The queue's pending zset and its wake-up stream."""
        qhex = hexid(queue)
        return f"{self.prefix}:runs:{qhex}", f"{self.prefix}:q:{qhex}"

    async def enqueue(self, request: RunRequest) -> None:
        """Store the request and wake the queue's waiters, atomically; `ValueError` if the id
        exists."""
        check_id("thread id", request.thread_id)
        zset, stream = self._queue_keys(request.queue)
        keys = [
            self._run_key(request.id),
            zset,
            stream,
            f"{self._base(request.thread_id)}:runs",
        ]
        args = [
            self.prefix,
            hexid(request.id),
            lex_member(request.created_at, request.id),
            text(request.status),
            hexid(request.queue),
            *request_fields(request),
        ]
        if not await self._run(_scripts.ENQUEUE, keys, args):
            raise ValueError(f"run request {request.id!r} already exists")

    async def claim_request(self, queue: str, owner: str, ttl: float) -> RunRequest | None:
        """Claim the oldest runnable request of `queue` (one script: never twice)."""
        zset, _ = self._queue_keys(queue)
        reply = await self._run(_scripts.CLAIM, [zset], [self.prefix, text(owner), _ms(ttl)])
        return decode_request(reply) if reply else None

    async def renew_claim(self, request_id: str, owner: str, ttl: float) -> bool:
        """Extend `owner`'s claim by `ttl` seconds from now (store clock)."""
        args = [text(owner), _ms(ttl)]
        return bool(await self._run(_scripts.RENEW_CLAIM, [self._run_key(request_id)], args))

    async def finish_request(
        self,
        request_id: str,
        owner: str | None,
        status: str,
        *,
        result: bytes | None = None,
        error: str | None = None,
    ) -> bool:
        """Set a final status (or `queued` to give it back); see `BaseSaver`."""
        args = [
            self.prefix,
            hexid(request_id),
            b"0" if owner is None else b"1",
            text(owner or ""),
            text(status),
            b"0" if result is None else b"1",
            bytes(result or b""),
            b"0" if error is None else b"1",
            text(error or ""),
        ]
        return bool(await self._run(_scripts.FINISH, [self._run_key(request_id)], args))

    async def get_request(self, request_id: str) -> RunRequest | None:
        """The request's hash (one HGETALL), or None."""
        client = await self.get_client()
        try:
            execute = cast(Callable[..., Awaitable[Any]], client.execute_command)  # (untyped)
            flat = await execute("HGETALL", self._run_key(request_id))
        except Exception as exc:
            mapped = self._unavailable(exc)
            if mapped is None:
                raise
            raise mapped from exc
        if isinstance(flat, dict):
            flat = [x for pair in flat.items() for x in pair]
        return decode_request(flat) if flat else None

    async def list_requests(self, query: RunQuery = RunQuery()) -> list[RunRequest]:  # noqa: B008
        """A page of requests, newest first; damaged hashes listed with `damaged` set.

        Redis keeps no index of finished requests, so this scans the prefix's request keys
        (SCAN, never KEYS) and reads them in pipelined batches: an operator's view, whose cost
        grows with the number of requests stored.
        """
        if query.limit <= 0:
            return []
        client = await self.get_client()
        found: list[RunRequest] = []

        async def read(keys: list[bytes]) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                replies = await pipe.execute()
            for reply in replies:
                flat = reply
                if isinstance(reply, dict):
                    flat = [x for pair in reply.items() for x in pair]
                if flat:
                    request = decode_request(flat, lenient=True)
                    if query.matches(request):
                        found.append(request)

        try:
            batch: list[bytes] = []
            pattern = _glob_escape(self.prefix) + ":run:*"
            async for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 500:
                    await read(batch)
                    batch = []
            if batch:
                await read(batch)
        except Exception as exc:
            mapped = self._unavailable(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return sorted(found, key=run_order, reverse=True)[: query.limit]

    async def wait_for_work(self, queue: str, timeout: float) -> None:
        """Return at once if a request is runnable; else block on the queue's stream (XREAD
        BLOCK from the last id seen) until a wake-up, a live claim expires, or `timeout`."""
        if timeout <= 0:
            return
        zset, stream = self._queue_keys(queue)
        ready, seen, wake_ms = await self._run(_scripts.WORK_STATE, [zset, stream], [self.prefix])
        if ready:
            return
        wait = timeout if int(wake_ms) < 0 else min(timeout, int(wake_ms) / 1000 + 0.001)
        notifier = await self._notifier()
        await notifier.wait_for_stream(stream, seen, wait)

    async def wait_for_change(self, thread_id: str, timeout: float) -> None:
        """Until a commit, writes, a lease release or a delete of the thread is published on
        `P:changes`, or `timeout` seconds."""
        if timeout <= 0:
            return
        notifier = await self._notifier()
        await notifier.wait_for_change(text(thread_id), timeout)


async def _send_weakly(
    saver: weakref.ref[RedisSaver], pipeline: ScriptPipeline, calls: list[Call]
) -> list[Any]:
    """`RedisSaver._send` for a batcher, which must not keep a dropped saver alive."""
    live = saver()
    if live is None:
        raise RuntimeError("this RedisSaver was garbage-collected")
    return await live._send(pipeline, calls)


def _inbox_entry(member: bytes, data: bytes) -> InboxEntry:
    """The entry stored as `data`; a damaged one as an entry with `damaged` set and the ids its
    index member names (hex of created_at, thread id, interrupt id)."""
    try:
        return decode_entry(data)
    except Exception as exc:
        try:
            created, thread, interrupt = (
                untext(bytes.fromhex(p)) for p in member.decode().split(".")
            )
        except ValueError:  # (not hex, not three parts)
            created = thread = interrupt = ""
        return InboxEntry(
            thread_id=thread,
            interrupt_id=interrupt,
            checkpoint_ns="",
            node="",
            value=b"",
            created_at=created,
            damaged=f"its stored entry cannot be read ({type(exc).__name__}: {exc})",
        )


@dataclass(frozen=True)
class RedisUrlOptions:
    """The `RedisSaver` options a Redis URL's query may set; every other query parameter goes
    to redis-py."""

    prefix: str = "hitl"
    ttl: float | None = None
    max_connections: int = 50
    pool_timeout: float | None = 60.0
    socket_timeout: float | None = None
    group_commit: bool = True
    max_batch: int = 32
    batches_in_flight: int = 4


def _parse_url(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Split the driver's own query options (`prefix`, `ttl`, ...) off a Redis URL.

    Explicit keyword options win over the URL's. Everything else is left for redis-py.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ValueError(f"not a Redis URL (redis://, rediss://, unix://): {url!r}")
    found, kept = url_options(RedisUrlOptions, parts.query)
    found.update(options)
    clean = urlunsplit(parts._replace(query=urlencode(kept)))
    return clean, found


def from_url(url: str, **options: Any) -> RedisSaver:
    """A `RedisSaver` for `redis://`, `rediss://` or `unix://` URLs (the `connect()` entry point).

    Driver options come as keywords or URL query parameters: `prefix`, `max_connections`,
    `pool_timeout`, `ttl` (seconds), `socket_timeout`, `group_commit` (true/false),
    `max_batch`, `batches_in_flight`; other keywords go to redis-py.
    """
    clean, opts = _parse_url(url, options)
    return RedisSaver(clean, **opts)
