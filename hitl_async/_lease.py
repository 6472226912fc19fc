"""A run's hold on its thread: take the lease (one writer per thread), keep it renewed while the
run runs (by the lease keeper thread, `_lease_keeper`), give it back when the run ends. Every
write the run makes carries the lease, so a run that lost it (paused, partitioned, expired and
taken over) cannot write."""

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


def _owner_prefix() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:"


_OWNER = _owner_prefix()
_RUNS = itertools.count(1)


def _new_process() -> None:
    """A forked child names its runs' leases as its own, not as its parent's."""
    global _OWNER, _RUNS
    _OWNER, _RUNS = _owner_prefix(), itertools.count(1)


os.register_at_fork(after_in_child=_new_process)

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

    def store(self) -> LeaseStore:
        """The store, as one with leases (the keeper renews through it too)."""
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
        saver = self.store()
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
                self.keeper = _lease_keeper.keep(self)
                return loaded
            except ThreadBusyError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                if isinstance(saver, ChangeFeed):
                    await saver.wait_for_change(thread_id, min(remaining, 1.0))
                else:
                    await anyio.sleep(min(remaining, 0.05))

    def hand_over(self) -> Lease | None:
        """Stop renewing and forget the lease: the run's last commit releases it."""
        if self.keeper is not None:
            _lease_keeper.release(self.keeper)  # first: a renewal under way is then discarded
            self.keeper = None
        lease, self.current = self.current, None
        return lease

    async def release(self, thread_id: str | None) -> None:
        """Give the thread back (the run ended, paused or failed). If the store cannot be
        reached the lease simply lapses after its ttl; the run's own error stands."""
        lease = self.hand_over()
        if lease is None:
            return
        await self.give_back(lease, thread_id)

    async def give_back(self, lease: Lease, thread_id: str | None) -> None:
        """Release `lease`, already handed over (its releasing commit failed, or `release`).
        If the store cannot be reached, the driver releases it again before this saver next
        takes the thread; elsewhere it lapses after its ttl."""
        saver = self.store()
        if self._io_free:  # an in-process store: the call cannot be interrupted half-way
            await saver.release_lease(lease)
            return
        with anyio.CancelScope(shield=True):
            try:
                await saver.release_lease(lease)
            except StoreUnavailableError as exc:
                log.warning("thread %r: could not release its lease: %s", thread_id, exc)
