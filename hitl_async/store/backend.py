"""What a store driver implements: a few storage primitives, the same on every database.

`BackendStore` (in `hitl_async.store.driver`) turns LangGraph's operations into calls of these
primitives and does everything else itself (validation, filters it cannot push down, ordering,
scoring, TTL arithmetic), so every driver behaves the same. Namespaces reach a backend as text
(labels joined by "."), values as JSON bytes, times as integer microseconds since the epoch.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from hitl_async.store.filters import Condition

__all__ = ["PutRow", "StoreBackend", "StoredRow"]


class StoredRow(NamedTuple):
    """One stored item as a backend returns it."""

    namespace: str
    key: str
    value: bytes | str
    created_us: int
    updated_us: int
    ttl_minutes: float | None


class PutRow(NamedTuple):
    """One item to insert or replace. `expires_us` is None for no expiry. `vectors` is None when
    the store has no index (vectors are not touched), else the item's new vectors (path, float32
    bytes), which replace all its old ones (an empty list removes them)."""

    namespace: str
    key: str
    value: bytes
    now_us: int
    expires_us: int | None
    ttl_minutes: float | None
    vectors: list[tuple[str, bytes]] | None


class StoreBackend(Protocol):
    """Storage primitives of one database. `sync=True` calls come from synchronous code and
    must not suspend (only backends with `sync_capable` get them); `prefix` is a namespace text
    ("" for everything) matched at label boundaries; `live_after` is None to include expired
    rows, else only rows without expiry or expiring after it are seen."""

    sync_capable: bool
    """Whether calls with `sync=True` run without suspending. Such a backend may also have an
    `offload(fn)` coroutine method running `fn()` on its own thread: async batches then run
    there, in synchronous mode, in one hop."""

    def pushdown(self, conditions: tuple[Condition, ...]) -> bool:
        """Whether `query`/`candidates` can apply these conditions themselves."""
        ...

    async def setup(self) -> None: ...

    async def aclose(self) -> None: ...

    async def fetch(
        self, refs: list[tuple[str, str]], live_after: int | None, sync: bool
    ) -> list[StoredRow | None]:
        """The rows at (namespace, key), None where there is none."""
        ...

    async def write(self, puts: list[PutRow], deletes: list[tuple[str, str]], sync: bool) -> None:
        """Upsert `puts` (keeping `created` of replaced rows) and delete `deletes`, atomically."""
        ...

    async def touch(self, refs: list[tuple[str, str]], now_us: int, sync: bool) -> None:
        """Move the expiry of these rows (those with a TTL) to now + their TTL."""
        ...

    async def query(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        limit: int | None,
        offset: int,
        live_after: int | None,
        sync: bool,
    ) -> list[StoredRow]:
        """Rows under `prefix` passing `conditions` (only ones `pushdown` accepted), newest
        `updated` first, then by namespace and key; `limit=None` returns all."""
        ...

    async def candidates(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        live_after: int | None,
        sync: bool,
    ) -> list[tuple[StoredRow, list[bytes]]]:
        """Every row under `prefix` passing `conditions`, with its stored vectors."""
        ...

    async def namespaces(self, prefix: str, live_after: int | None, sync: bool) -> list[str]:
        """The distinct namespace texts under `prefix` that hold (live) rows."""
        ...

    async def sweep(self, now_us: int, sync: bool) -> int:
        """Delete rows whose expiry passed; how many."""
        ...
