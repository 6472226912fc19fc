"""Leases on Redis (`LeaseStore`): one hash per thread (`P:{T}:lease`) whose token only
grows, and the `P:leases` zset of unreleased ones by expiry (`expired_leases`). Every decision
is one script judged by Redis TIME; `acquire_and_load` takes the lease and reads the starting
checkpoint in one script."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hitl_async.checkpoint.base import Lease, LoadedCheckpoint
from hitl_async.checkpoint.capabilities import LeaseStore
from hitl_async.checkpoint.ids import check_id
from hitl_async.errors import ThreadBusyError
from hitl_async_redis import _scripts
from hitl_async_redis._checkpoints import loaded_checkpoint
from hitl_async_redis._codec import ms, text, untext
from hitl_async_redis._connection import RedisConnection
from hitl_async_redis._failures import lease_lost

__all__ = ["RedisLeases"]


class RedisLeases(RedisConnection, LeaseStore):
    """Leases with fencing tokens; releases that failed are retried before the next acquire
    (`_pending_releases`)."""

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
        args = [member, text(owner), ms(ttl), text(graph)]
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
        args = [member, text(owner), ms(ttl), text(graph), *load_args]
        reply = await self._run(_scripts.ACQUIRE_AND_LOAD, [*lease_keys, *load_keys], args)
        lease = self._acquired(thread_id, owner, graph, reply)
        raw = reply[3] if len(reply) > 3 else None
        return lease, None if raw is None else loaded_checkpoint(thread_id, checkpoint_ns, raw)

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        """Extend the lease from now (store clock), or `LeaseLostError`."""
        keys, member = self._lease_keys(lease.thread_id)
        args = [member, str(int(lease.token)), ms(ttl)]
        reply = await self._run(_scripts.RENEW_LEASE, keys, args)
        if not reply[0]:
            raise lease_lost(lease.thread_id, lease.token, reply)
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
