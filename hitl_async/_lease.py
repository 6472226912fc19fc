"""A run's hold on its thread: take the lease (one writer per thread), keep it renewed while the
run runs, give it back when the run ends. Every write the run makes carries the lease, so a run
that lost it (paused, partitioned, expired and taken over) cannot write."""

from __future__ import annotations

import itertools
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING

import anyio

from hitl_async import _lease_keeper
from hitl_async.checkpoint.capabilities import ChangeFeed, LeaseStore
from hitl_async.errors import StoreUnavailableError, ThreadBusyError
from hitl_async.telemetry import get_logger

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import BaseSaver, Lease, LoadedCheckpoint

__all__ = ["ThreadLease"]

_OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:"
_RUNS = itertools.count(1)

log = get_logger("hitl_async.run")


class ThreadLease:
    """The lease one run holds on its thread (`current`, None while not held)."""

    __slots__ = ("current", "keeper", "owner", "saver", "ttl")

    def __init__(self, saver: BaseSaver | None, ttl: float) -> None:
        self.saver = saver
        self.ttl = ttl
        self.owner = f"{_OWNER}{next(_RUNS)}"
        self.current: Lease | None = None
        self.keeper: int | None = None

    def _store(self) -> LeaseStore:
        saver = self.saver
        assert saver is not None, "a lease needs a store"
        assert isinstance(saver, LeaseStore), "a lease needs a store with leases"
        return saver

    @property
    def _io_free(self) -> bool:
        return self.saver is not None and self.saver.io_free

    async def claim(
        self,
        thread_id: str,
        *,
        wait: float,
        graph: str,
        checkpoint_ns: str,
        checkpoint_id: str | None,
    ) -> LoadedCheckpoint | None:
        """Take the thread's lease (waiting up to `wait` seconds for a busy thread) and load the
        checkpoint the run starts from in the same round trip."""
        saver = self._store()
        deadline = time.monotonic() + wait
        while True:
            try:
                self.current, loaded = await saver.acquire_and_load(
                    thread_id,
                    self.owner,
                    self.ttl,
                    graph=graph,
                    checkpoint_ns=checkpoint_ns,
                    checkpoint_id=checkpoint_id,
                )
                if not self._io_free:
                    self.keeper = _lease_keeper.keep(self._renew_now, self.ttl / 3)
                return loaded
            except ThreadBusyError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                if isinstance(saver, ChangeFeed):
                    await saver.wait_for_change(thread_id, min(remaining, 1.0))
                else:
                    await anyio.sleep(min(remaining, 0.05))

    @property
    def renewed_between_steps(self) -> bool:
        """Held, and renewed by the run between supersteps (in-process stores) rather than by
        the keeper thread."""
        return self.current is not None and self.keeper is None

    async def renew(self) -> None:
        """Extend the lease when less than half of it is left."""
        lease = self.current
        if lease is not None and lease.expires_at - time.time() < self.ttl / 2:
            self.current = await self._store().renew_lease(lease, self.ttl)

    async def _renew_now(self) -> float:
        """Called by the lease keeper thread in this run's loop; returns when to call again."""
        lease = self.current
        if lease is not None:
            self.current = await self._store().renew_lease(lease, self.ttl)
        return self.ttl / 3

    def hand_over(self) -> Lease | None:
        """Stop renewing and forget the lease: the run's last commit releases it."""
        self._stop_keeping()
        lease, self.current = self.current, None
        return lease

    def _stop_keeping(self) -> None:
        if self.keeper is not None:
            _lease_keeper.release(self.keeper)
            self.keeper = None

    async def release(self, thread_id: str | None) -> None:
        """Give the thread back (the run ended, paused or failed). If the store cannot be
        reached the lease simply lapses after its ttl; the run's own error stands."""
        lease = self.hand_over()
        if lease is None:
            return
        saver = self._store()
        if self._io_free:  # an in-process store: the call cannot be interrupted half-way
            await saver.release_lease(lease)
            return
        with anyio.CancelScope(shield=True):
            try:
                await saver.release_lease(lease)
            except StoreUnavailableError as exc:
                log.warning("thread %r: could not release its lease: %s", thread_id, exc)
