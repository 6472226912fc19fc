"""Leases, the inbox index, the run queue and the node cache of `InMemorySaver` (one process,
one lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import anyio

from hitl_async.checkpoint.base import InboxEntry, Lease, RunRequest
from hitl_async.checkpoint.capabilities import InboxQuery, RunQuery, inbox_order, run_order
from hitl_async.checkpoint.ids import check_id
from hitl_async.errors import LeaseLostError, ThreadBusyError

__all__ = ["MemoryCoordination"]

_POLL = 0.01


@dataclass(slots=True)
class _LeaseRow:
    lease: Lease
    released: bool = False


class MemoryCoordination:
    """Mixin for `InMemorySaver`; `_lock` guards every structure here too."""

    _lock: threading.Lock

    def _init_coordination(self) -> None:
        self._leases: dict[str, _LeaseRow] = {}
        self._tokens: dict[str, int] = {}
        self._inbox: dict[str, list[InboxEntry]] = {}
        self._requests: dict[str, RunRequest] = {}
        self._changes: dict[str, int] = {}
        self._cached: dict[str, dict[str, tuple[bytes, float | None]]] = {}

    # -- called under the lock by commit/put_writes ----------------------------------------------

    def _check_lease(self, thread_id: str, lease: Lease | None) -> None:
        if lease is None:
            return
        row = self._leases.get(thread_id)
        current = row.lease.token if row is not None else None
        if row is None or row.released or current != lease.token:  # expiry alone: still ours
            raise LeaseLostError(thread_id, lease.token, current)

    def _set_inbox(self, thread_id: str, inbox: Sequence[InboxEntry] | None) -> None:
        if inbox is None:
            return
        if inbox:
            self._inbox[thread_id] = list(inbox)
        else:
            self._inbox.pop(thread_id, None)

    def _changed(self, thread_id: str) -> None:
        self._changes[thread_id] = self._changes.get(thread_id, 0) + 1

    def _forget_thread(self, thread_id: str) -> None:
        self._inbox.pop(thread_id, None)
        self._changed(thread_id)

    # -- leases ----------------------------------------------------------------------------------

    async def acquire_lease(
        self, thread_id: str, owner: str, ttl: float, *, graph: str = ""
    ) -> Lease:
        check_id("thread id", thread_id)
        with self._lock:
            return self._acquire_locked(thread_id, owner, ttl, graph)

    def _acquire_locked(self, thread_id: str, owner: str, ttl: float, graph: str) -> Lease:
        now = time.time()
        row = self._leases.get(thread_id)
        if row is not None and not row.released and row.lease.expires_at >= now:
            raise ThreadBusyError(thread_id, row.lease.owner, row.lease.expires_at)
        token = self._tokens.get(thread_id, 0) + 1
        self._tokens[thread_id] = token
        lease = Lease(thread_id, owner, token, now + ttl, graph)
        self._leases[thread_id] = _LeaseRow(lease)
        return lease

    async def renew_lease(self, lease: Lease, ttl: float) -> Lease:
        with self._lock:
            row = self._leases.get(lease.thread_id)
            if row is None or row.released or row.lease.token != lease.token:
                current = row.lease.token if row is not None else None
                raise LeaseLostError(lease.thread_id, lease.token, current)
            row.lease = replace(row.lease, expires_at=time.time() + ttl)
            return row.lease

    async def release_lease(self, lease: Lease) -> None:
        with self._lock:
            self._release_locked(lease)

    def _release_locked(self, lease: Lease) -> None:
        row = self._leases.get(lease.thread_id)
        if row is not None and row.lease.token == lease.token:
            row.released = True
            self._changed(lease.thread_id)

    async def expired_leases(self, *, graph: str | None = None, limit: int = 100) -> list[Lease]:
        now = time.time()
        with self._lock:
            rows = [
                r.lease
                for r in self._leases.values()
                if not r.released
                and r.lease.expires_at < now
                and (graph is None or r.lease.graph == graph)
            ]
        return sorted(rows, key=lambda lease: lease.expires_at)[:limit]

    # -- inbox -----------------------------------------------------------------------------------

    async def list_inbox(self, query: InboxQuery = InboxQuery()) -> list[InboxEntry]:  # noqa: B008
        with self._lock:
            if query.thread_id is not None:
                entries = list(self._inbox.get(query.thread_id, ()))
            else:
                entries = [e for rows in self._inbox.values() for e in rows]
        out = sorted((e for e in entries if query.matches(e)), key=inbox_order)
        return out[: max(query.limit, 0)]

    # -- run queue -------------------------------------------------------------------------------

    async def enqueue(self, request: RunRequest) -> None:
        check_id("thread id", request.thread_id)
        with self._lock:
            if request.id in self._requests:
                raise ValueError(f"run request {request.id!r} already exists")
            self._requests[request.id] = request

    async def claim_request(self, queue: str, owner: str, ttl: float) -> RunRequest | None:
        now = time.time()
        with self._lock:
            busy = {
                r.thread_id
                for r in self._requests.values()
                if r.status == "running" and (r.claim_expires or 0) >= now
            }
            candidates = [
                r
                for r in self._requests.values()
                if r.queue == queue
                and r.thread_id not in busy
                and (
                    r.status == "queued" or (r.status == "running" and (r.claim_expires or 0) < now)
                )
            ]
            if not candidates:
                return None
            pick = min(candidates, key=lambda r: (r.created_at, r.id))
            claimed = replace(
                pick,
                status="running",
                owner=owner,
                claim_expires=now + ttl,
                attempts=pick.attempts + 1,
            )
            self._requests[pick.id] = claimed
            return claimed

    async def renew_claim(self, request_id: str, owner: str, ttl: float) -> bool:
        with self._lock:
            r = self._requests.get(request_id)
            if r is None or r.status != "running" or r.owner != owner:
                return False
            self._requests[request_id] = replace(r, claim_expires=time.time() + ttl)
            return True

    async def finish_request(
        self,
        request_id: str,
        owner: str | None,
        status: str,
        *,
        result: bytes | None = None,
        error: str | None = None,
    ) -> bool:
        with self._lock:
            r = self._requests.get(request_id)
            if r is None:
                return False
            if owner is None:
                if r.status != "queued":
                    return False
            elif r.status != "running" or r.owner != owner:
                return False
            if status == "queued":
                self._requests[request_id] = replace(  # given back: not an attempt
                    r,
                    status="queued",
                    owner=None,
                    claim_expires=None,
                    attempts=max(r.attempts - 1, 0),
                )
            else:
                self._requests[request_id] = replace(
                    r, status=status, result=result, error=error, claim_expires=None
                )
            return True

    async def get_request(self, request_id: str) -> RunRequest | None:
        with self._lock:
            return self._requests.get(request_id)

    async def list_requests(self, query: RunQuery = RunQuery()) -> list[RunRequest]:  # noqa: B008
        with self._lock:
            found = [r for r in self._requests.values() if query.matches(r)]
        return sorted(found, key=run_order, reverse=True)[: max(query.limit, 0)]

    async def wait_for_work(self, queue: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if any(r.queue == queue and r.status == "queued" for r in self._requests.values()):
                    return
            await anyio.sleep(_POLL)

    async def wait_for_change(self, thread_id: str, timeout: float) -> None:
        with self._lock:
            seen = self._changes.get(thread_id, 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await anyio.sleep(_POLL)
            with self._lock:
                if self._changes.get(thread_id, 0) != seen:
                    return

    # -- node cache (CacheStore) ------------------------------------------------------------------

    async def cache_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """The entries still cached for `keys`."""
        now = time.time()
        found: dict[tuple[str, str], bytes] = {}
        with self._lock:
            for ns, key in keys:
                entry = self._cached.get(ns, {}).get(key)
                if entry is not None and (entry[1] is None or now < entry[1]):
                    found[(ns, key)] = entry[0]
        return found

    async def cache_set(self, entries: Sequence[tuple[str, str, bytes, float | None]]) -> None:
        """Store entries, each kept `ttl` seconds (None: until cleared)."""
        now = time.time()
        with self._lock:
            for ns, key, value, ttl in entries:
                self._cached.setdefault(ns, {})[key] = (
                    bytes(value),
                    None if ttl is None else now + ttl,
                )

    async def cache_clear(self, namespaces: Sequence[str] | None = None) -> None:
        """Delete the entries of `namespaces` (None: all)."""
        with self._lock:
            if namespaces is None:
                self._cached.clear()
            for ns in namespaces or ():
                self._cached.pop(ns, None)
