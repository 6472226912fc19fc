"""Wake-ups without polling, per event loop: a pub/sub listener for thread changes and one
`XREAD BLOCK` watcher per waited-on queue stream, each on its own dedicated connection.

Both start on the first wait and stop after `idle` seconds without waiters, so a process that
never waits holds no extra connection. A waiter registers a future and waits for it with its
timeout as the fallback; every wake-up is a hint ("may have changed"), never a promise, so a
lost connection just wakes everyone (they re-check) and the next wait reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis

from hitl_async.checkpoint.retry import OutageLog
from hitl_async.telemetry import get_logger

__all__ = ["Notifier", "stream_id"]

log = get_logger(__name__)
_OUTAGE = OutageLog(log, "hitl_async_redis notifications")

_BLOCK_MS = 1000
_StreamId = tuple[int, int]


def stream_id(value: bytes | str) -> _StreamId:
    """`b"<ms>-<seq>"` as a comparable tuple."""
    raw = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = raw.partition("-")
    return int(ms), int(seq or 0)


def _wake(futures: Iterable[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


class _Listener:
    """A background task on a dedicated client; stops when idle, cancelled, or on an error."""

    def __init__(self, client: Redis, idle: float, on_exit: Callable[[_Listener], None]) -> None:
        self.client = client
        self.idle = idle
        self.on_exit = on_exit
        self.alive = True
        self.task = asyncio.get_running_loop().create_task(self._main())

    def pending(self) -> list[asyncio.Future[None]]:
        raise NotImplementedError

    async def _loop(self) -> None:
        raise NotImplementedError

    def _idle_for(self, since: float | None) -> float | None:
        """Track how long nobody waited; returns the new `since` (None: someone waits)."""
        if self.pending():
            return None
        return asyncio.get_running_loop().time() if since is None else since

    async def _main(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a wake-up source failing must not fail the waiters
            _OUTAGE.failed(exc)  # (they re-check; one log line per outage, no traceback)
        finally:
            # synchronous up to here: no waiter can register with a listener that is exiting
            self.alive = False
            self.on_exit(self)
            _wake(self.pending())
            with contextlib.suppress(Exception):
                await self.client.aclose()

    def _expired(self, since: float | None) -> bool:
        return since is not None and asyncio.get_running_loop().time() - since >= self.idle


class _Changes(_Listener):
    """SUBSCRIBE to the changes channel; each message is a thread id (UTF-8 bytes)."""

    def __init__(
        self, client: Redis, channel: str, idle: float, on_exit: Callable[[_Listener], None]
    ) -> None:
        self.channel = channel
        self.waiters: dict[bytes, set[asyncio.Future[None]]] = {}
        super().__init__(client, idle, on_exit)

    def pending(self) -> list[asyncio.Future[None]]:
        return [f for group in self.waiters.values() for f in group]

    async def _loop(self) -> None:
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            _OUTAGE.recovered()
            since: float | None = None
            while True:
                message: dict[str, Any] | None = await pubsub.get_message(timeout=_BLOCK_MS / 1000)
                if message is not None and message.get("type") == "message":
                    _wake(self.waiters.pop(message["data"], ()))
                since = self._idle_for(since)
                if self._expired(since):
                    return
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def wait(self, thread: bytes, timeout: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        group = self.waiters.setdefault(thread, set())
        group.add(future)
        try:
            await asyncio.wait({future}, timeout=timeout)
        finally:
            group.discard(future)
            if not group and self.waiters.get(thread) is group:
                del self.waiters[thread]


class _Stream(_Listener):
    """XREAD BLOCK on one stream from the last id seen; wakes waiters whose id is older."""

    def __init__(
        self,
        client: Redis,
        key: str,
        last: bytes,
        idle: float,
        on_exit: Callable[[_Listener], None],
    ) -> None:
        self.key = key
        self.last = last
        self.waiters: dict[asyncio.Future[None], _StreamId] = {}
        super().__init__(client, idle, on_exit)

    def pending(self) -> list[asyncio.Future[None]]:
        return list(self.waiters)

    async def _loop(self) -> None:
        since: float | None = None
        while True:
            reply: Any = await self.client.xread({self.key: self.last}, count=100, block=_BLOCK_MS)
            groups = reply.values() if isinstance(reply, dict) else [g[1] for g in reply or ()]
            for entries in groups:
                for entry in entries:
                    self.last = entry[0]
            newest = stream_id(self.last)
            _wake([f for f, seen in self.waiters.items() if seen < newest])
            since = self._idle_for(since)
            if self._expired(since):
                return

    async def wait(self, seen: bytes, timeout: float) -> None:
        mark = stream_id(seen)
        if stream_id(self.last) > mark:
            return  # an entry arrived after the caller's check
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters[future] = mark
        try:
            await asyncio.wait({future}, timeout=timeout)
        finally:
            self.waiters.pop(future, None)


class Notifier:
    """The wake-up sources of one event loop; `connect()` makes a dedicated client."""

    def __init__(self, connect: Callable[[], Redis], channel: str, *, idle: float = 5.0) -> None:
        self._connect = connect
        self._channel = channel
        self._idle = idle
        self._changes: _Changes | None = None
        self._streams: dict[str, _Stream] = {}
        self._closed = False

    def _gone(self, listener: _Listener) -> None:
        if self._changes is listener:
            self._changes = None
        if isinstance(listener, _Stream) and self._streams.get(listener.key) is listener:
            del self._streams[listener.key]

    async def wait_for_change(self, thread: bytes, timeout: float) -> None:
        """Until a message names `thread` on the changes channel, or `timeout` seconds."""
        if self._closed:
            raise RuntimeError("the saver is closed")
        changes = self._changes
        if changes is None or not changes.alive:
            changes = self._changes = _Changes(
                self._connect(), self._channel, self._idle, self._gone
            )
        await changes.wait(thread, timeout)

    async def wait_for_stream(self, key: str, seen: bytes, timeout: float) -> None:
        """Until stream `key` has an entry newer than `seen`, or `timeout` seconds."""
        if self._closed:
            raise RuntimeError("the saver is closed")
        stream = self._streams.get(key)
        if stream is None or not stream.alive:
            stream = self._streams[key] = _Stream(
                self._connect(), key, seen, self._idle, self._gone
            )
        await stream.wait(seen, timeout)

    async def aclose(self) -> None:
        """Stop every listener and close its connection."""
        self._closed = True
        listeners: list[_Listener] = list(self._streams.values())
        if self._changes is not None:
            listeners.append(self._changes)
        for listener in listeners:
            listener.task.cancel()
        await asyncio.gather(*(listener.task for listener in listeners), return_exceptions=True)
