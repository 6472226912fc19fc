"""`Listener`: the dedicated LISTEN connection of one event loop, waking `wait_for_*` callers.

A pooled connection cannot listen (notifications arrive only while it is idle in the pool, and a
connection that listens is session state the pool does not reset), so each event loop that waits
gets one extra connection of its own. It listens to the schema's two channels (`Channels`): the
change channel (payload: a thread id) and the queue channel (payload: a queue name); an empty
payload wakes every waiter of that channel. Waiters are plain `asyncio.Event`s keyed by
(channel, key): a notification sets those of its key; losing the connection or closing sets all
(a waiter may always wake early: it only means "may have changed").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg

from hitl_async_postgres._schema import Channels

__all__ = ["Listener"]

_CLOSE_TIMEOUT = 5.0


class Listener:
    """LISTEN on one connection; `waiting(channel, key)` yields an event set on notification."""

    def __init__(self, conn: asyncpg.Connection, channels: Channels) -> None:
        self.conn = conn
        self.channels = channels
        self.alive = True
        self._waiters: dict[tuple[str, str], set[asyncio.Event]] = {}

    @classmethod
    async def open(cls, dsn: str, channels: Channels, **connect_options: Any) -> Listener:
        """Connect (outside any pool) and LISTEN on both channels."""
        conn = await asyncpg.connect(dsn, **connect_options)
        listener = cls(conn, channels)
        try:
            await conn.add_listener(channels.change, listener._on_notify)
            await conn.add_listener(channels.queue, listener._on_notify)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(listener._on_lost)
        return listener

    @contextlib.contextmanager
    def waiting(self, channel: str, key: str) -> Iterator[asyncio.Event]:
        """Register a waiter for `key` on `channel` for the duration of the block."""
        event = asyncio.Event()
        if not self.alive:
            event.set()
        waiters = self._waiters.setdefault((channel, key), set())
        waiters.add(event)
        try:
            yield event
        finally:
            waiters.discard(event)
            if not waiters and self._waiters.get((channel, key)) is waiters:
                del self._waiters[(channel, key)]

    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        if payload:
            for event in self._waiters.get((channel, payload), ()):
                event.set()
        else:
            self._wake(lambda key: key[0] == channel)

    def _wake(self, which: Callable[[tuple[str, str]], bool] | None = None) -> None:
        for key, events in self._waiters.items():
            if which is None or which(key):
                for event in events:
                    event.set()

    def _on_lost(self, conn: object) -> None:
        """The connection dropped (server restart, idle timeout): wake everyone; the saver opens
        a new listener on the next wait."""
        self.alive = False
        self._wake()

    async def close(self) -> None:
        """Stop listening and close the connection (terminate it if that hangs)."""
        self.alive = False
        self._wake()
        try:
            await asyncio.wait_for(self.conn.close(), _CLOSE_TIMEOUT)
        except Exception:
            with contextlib.suppress(Exception):
                self.conn.terminate()

    def terminate(self) -> None:
        """Close the socket at once (its event loop is gone or not running)."""
        self.alive = False
        with contextlib.suppress(Exception):
            self.conn.terminate()
