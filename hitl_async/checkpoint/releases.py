"""Lease releases that failed, done again before the same saver next takes the thread.

A run releases its thread's lease when it ends. If the store could not be reached at that
moment the lease stays held until it expires (`lease_ttl`), so the caller's own next call on the
thread would fail with `ThreadBusyError` for that long although nobody runs it. A driver keeps
such leases here and releases them again (by token: it can never release a newer lease) first
thing when this saver next acquires that thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from hitl_async.checkpoint.base import Lease

__all__ = ["PendingReleases"]


class PendingReleases:
    """The leases of this saver whose release failed, by thread."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}

    def failed(self, lease: Lease) -> None:
        """`lease`'s release did not reach the store."""
        self._leases[lease.thread_id] = lease

    async def settle(self, thread_id: str, release: Callable[[Lease], Awaitable[None]]) -> None:
        """Release again a lease of `thread_id` whose release failed (quietly: if the store is
        still unreachable the acquire that follows says so)."""
        lease = self._leases.pop(thread_id, None)
        if lease is not None:
            with contextlib.suppress(Exception):
                await release(lease)
