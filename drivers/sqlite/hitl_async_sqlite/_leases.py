"""Leases on SQLite (`LeaseStore`): a `leases` row per thread whose token only grows, every
decision a write job under the write lock (SQL in `_coordination`)."""

from __future__ import annotations

from hitl_async.checkpoint.base import Lease, LoadedCheckpoint
from hitl_async.checkpoint.capabilities import LeaseStore
from hitl_async.checkpoint.ids import check_id
from hitl_async_sqlite import _coordination as _coord
from hitl_async_sqlite._connection import SqliteConnection
from hitl_async_sqlite._watch import thread_key

__all__ = ["SqliteLeases"]


class SqliteLeases(SqliteConnection, LeaseStore):
    """Leases with fencing tokens; releases that failed are retried before the next acquire
    (`_pending_releases`)."""

    async def acquire_lease(
        self, thread_id: str, owner: str, ttl: float, *, graph: str = ""
    ) -> Lease:
        """Take the thread's lease with the next token, or `ThreadBusyError` (one transaction)."""
        check_id("thread id", thread_id)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        job = _coord.acquire_lease_job(thread_id, owner, ttl, graph, self._lease_clock)
        lease: Lease = await self._write(job)
        return lease

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
        """`acquire_lease` then `load`, in one hop and one transaction."""
        check_id("thread id", thread_id)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        job = _coord.acquire_and_load_job(
            thread_id, owner, ttl, graph, checkpoint_ns, checkpoint_id, self._lease_clock
        )
        acquired: tuple[Lease, LoadedCheckpoint | None] = await self._write(job)
        return acquired

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend the lease `ttl` seconds from now, or `LeaseLostError`."""
        renewed: Lease = await self._write(_coord.renew_lease_job(lease, ttl, self._lease_clock))
        return renewed

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up if its token is still the thread's; if the store cannot be reached,
        it is released again before this saver next acquires the thread."""
        try:
            await self._release_lease_once(lease)
        except Exception:
            self._pending_releases.failed(lease)
            raise

    async def _release_lease_once(self, lease: Lease) -> None:
        """Mark the lease released if its token is still the thread's; else do nothing."""
        await self._write(_coord.release_lease_job(lease), thread_key(lease.thread_id))

    async def expired_leases(self, *, graph: str | None = None, limit: int = 100) -> list[Lease]:
        """Unreleased leases past their expiry, oldest expiry first."""
        if limit <= 0:
            return []
        return await self._read(_coord.expired_leases, graph, limit, self._lease_clock)
