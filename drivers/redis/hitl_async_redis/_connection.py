"""The connections of a `RedisSaver`: a client per event loop, script calls, group commit.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import threading
import uuid
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from hitl_async.checkpoint.batching import Batcher
from hitl_async.checkpoint.lifecycle import (
    after_fork_in_child,
    creation_site,
    forked_away,
    warn_unclosed,
)
from hitl_async.checkpoint.releases import PendingReleases
from hitl_async.errors import StoreUnavailableError
from hitl_async_redis import _scripts
from hitl_async_redis._failures import mapped, unavailable
from hitl_async_redis._keys import KeyLayout, ThreadKeys, glob_escape
from hitl_async_redis._notify import Notifier
from hitl_async_redis._pipeline import Call, ScriptPipeline

__all__ = ["LoopState", "RedisConnection"]


def _ttl_ms(ttl: float | timedelta | None) -> int:
    if ttl is None:
        return 0
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return max(1, round(seconds * 1000))


class LoopState:
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
        "lock",
        "pipeline",
    )

    def __init__(self, client: Redis, lock: threading.Lock) -> None:
        self.client = client
        self.lock = lock  # the saver's lock when this was made (a forked child makes a new one)
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
    clients: dict[asyncio.AbstractEventLoop, LoopState],
    notifiers: dict[asyncio.AbstractEventLoop, Notifier],
    state: LoopState,
    loop: asyncio.AbstractEventLoop,
) -> AsyncGenerator[None, None]:
    """Closes the loop's client when finalized: by `aclose()`, or by the loop's
    `shutdown_asyncgens()` (which `asyncio.run()` calls), so a loop that ends never leaves
    connections behind. (It holds no reference to the saver, so a saver dropped without
    `aclose()` can be collected.)"""
    try:
        yield
    finally:
        await _shut(clients, notifiers, state, loop)


async def _shut(
    clients: dict[asyncio.AbstractEventLoop, LoopState],
    notifiers: dict[asyncio.AbstractEventLoop, Notifier],
    state: LoopState,
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
        with state.lock:
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


def _finish(closer: AsyncGenerator[None, None]) -> None:
    """Finalize the closer of a loop closed without `shutdown_asyncgens()`, synchronously."""
    step = closer.aclose()
    try:
        step.send(None)
    except StopIteration:
        pass
    finally:
        step.close()


def _release_clients(
    clients: dict[asyncio.AbstractEventLoop, LoopState],
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
                _finish(closer)
        else:
            _close_soon(loop, functools.partial(_shut, clients, notifiers, state, loop))


def _forget_parent(saver: RedisConnection) -> None:
    """In a forked child: drop the parent's clients (their sockets are the parent's: never
    closed here) so the child connects afresh on first use."""
    forked_away.append((dict(saver._clients), dict(saver._notifiers)))
    saver._clients.clear()
    saver._notifiers.clear()
    saver._lock = threading.Lock()


async def _send_weakly(
    saver: weakref.ref[RedisConnection], pipeline: ScriptPipeline, calls: list[Call]
) -> list[Any]:
    """`RedisConnection._send` for a batcher, which must not keep a dropped saver alive."""
    live = saver()
    if live is None:
        raise RuntimeError("this RedisSaver was garbage-collected")
    return await live._send(pipeline, calls)


class RedisConnection(KeyLayout):
    """What every part of `RedisSaver` stands on: its options, one client (a bounded pool) per
    event loop made on first use there, and `_run`, which calls a Lua script in one round
    trip (batched with the loop's other calls under group commit) and maps failures to the
    engine's errors. The capability mixins (`_checkpoints`, `_leases`, `_inbox`, `_runs`,
    `_changes`, `_cache`) subclass it; `RedisSaver` composes them."""

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
        self._clients: dict[asyncio.AbstractEventLoop, LoopState] = {}
        self._notifiers: dict[asyncio.AbstractEventLoop, Notifier] = {}
        self._thread_keys: dict[str, ThreadKeys] = {}
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(
            self,
            _release_clients,
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

    def _new_client(self) -> Redis:
        options: dict[str, Any] = {"socket_timeout": self.socket_timeout, **self.redis_options}
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=self.max_connections,
            timeout=self.pool_timeout,
            **options,
        )
        return Redis(connection_pool=pool)

    async def _state(self) -> LoopState:
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
            state = LoopState(self._new_client(), self._lock)
            if self.group_commit:
                state.batcher = Batcher(
                    functools.partial(_send_weakly, weakref.ref(self), state.pipeline),
                    concurrency=self.batches_in_flight,
                    max_batch=self.max_batch,
                )
            closer = state.closer = _closer(self._clients, self._notifiers, state, loop)
            self._clients[loop] = state
        for _, old in stale:
            if old.closer is not None:
                _finish(old.closer)
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

    async def _identify(self, state: LoopState) -> None:
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
        return mapped(self.url, self.prefix, self._store_id, exc)

    def _unavailable(self, exc: Exception) -> StoreUnavailableError | None:
        """`StoreUnavailableError` for a failure of the server or the connection, else None
        (see `_failures.unavailable`)."""
        return unavailable(self.url, exc)

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
                _finish(closer)
            else:
                shut = functools.partial(_shut, self._clients, self._notifiers, state, loop)
                _close_soon(loop, shut)

    async def destroy(self) -> None:
        """Delete every key under the prefix (SCAN + UNLINK, never KEYS). For tests and teardown."""
        client = await self.get_client()
        batch: list[bytes] = []
        async for key in client.scan_iter(match=glob_escape(self.prefix) + ":*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
        self._store_id = None  # a new, empty store from now on
