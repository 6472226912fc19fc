"""`PostgresLeases`: the leases of `PostgresSaver` (`LeaseStore`), in table `leases`: one row per
thread, kept after release so fencing tokens only grow; acquiring and renewing judged by the
server's clock."""

from __future__ import annotations

from hitl_async.checkpoint.base import Lease, LoadedCheckpoint
from hitl_async.checkpoint.capabilities import LeaseStore
from hitl_async.errors import LeaseLostError, ThreadBusyError
from hitl_async_postgres._calls import AcquireCall, ReleaseCall
from hitl_async_postgres._connections import PostgresConnections
from hitl_async_postgres._rows import check_text, loaded, one

__all__ = ["PostgresLeases"]


class PostgresLeases(PostgresConnections, LeaseStore):
    """Leases with fencing tokens; `acquire_and_load` and `release_lease` batched with group
    commit."""

    async def acquire_lease(
        self, thread_id: str, owner: str, ttl: float, *, graph: str = ""
    ) -> Lease:
        """One call of `hitl_acquire`: an upsert that takes the lease only if it is free,
        released or expired (the row lock makes concurrent acquires queue up and all but one
        find it taken), naming the holder when it is taken."""
        check_text("thread_id", thread_id)
        check_text("owner", owner)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        pool = await self._pool()
        row = one(
            await pool.fetchrow(self._q.acquire_lease, thread_id, owner, ttl, graph), thread_id
        )
        if row["token"] is None:
            raise ThreadBusyError(thread_id, row["holder"], row["holder_expires"])
        return Lease(thread_id, owner, row["token"], row["expires_at"], graph)

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
        """One call of `hitl_acquire_and_load`: `acquire_lease`, then (having the lease) the
        head or `checkpoint_id` as `load` returns it, read after the lease was taken."""
        check_text("thread_id", thread_id)
        check_text("owner", owner)
        await self._pending_releases.settle(thread_id, self._release_lease_once)
        check_text("checkpoint_ns", checkpoint_ns)
        if checkpoint_id:
            check_text("checkpoint_id", checkpoint_id)
        call = AcquireCall(thread_id, owner, ttl, graph, checkpoint_ns, checkpoint_id or None)
        entry = await self._entry()
        if entry.acquires is not None:
            row = await entry.acquires.submit(call)
        else:
            row = one(await entry.pool.fetchrow(self._q.acquire_and_load, *call.args()), thread_id)
        if row["token"] is None:
            raise ThreadBusyError(thread_id, row["holder"], row["holder_expires"])
        lease = Lease(thread_id, owner, row["token"], row["expires_at"], graph)
        if row["checkpoint_id"] is None:
            return lease, None
        return lease, loaded(thread_id, checkpoint_ns, row)

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        pool = await self._pool()
        row = one(
            await pool.fetchrow(self._q.renew_lease, lease.thread_id, lease.token, ttl),
            lease.thread_id,
        )
        if row["expires_at"] is None:
            raise LeaseLostError(lease.thread_id, lease.token, row["current"])
        return Lease(lease.thread_id, row["owner"], lease.token, row["expires_at"], row["graph"])

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up if its token is still the thread's; if the server cannot be
        reached, it is released again before this saver next acquires the thread."""
        try:
            await self._release_lease_once(lease)
        except Exception:
            self._pending_releases.failed(lease)
            raise

    async def _release_lease_once(self, lease: Lease) -> None:
        call = ReleaseCall(lease.thread_id, lease.token)
        entry = await self._entry()
        if entry.releases is not None:
            await entry.releases.submit(call)
        else:
            await entry.pool.fetchrow(self._q.release_lease, *call.args())

    async def expired_leases(self, *, graph: str | None = None, limit: int = 100) -> list[Lease]:
        pool = await self._pool()
        rows = await pool.fetch(self._q.expired_leases, graph, max(limit, 0))
        return [
            Lease(r["thread_id"], r["owner"], r["token"], r["expires_at"], r["graph"]) for r in rows
        ]
