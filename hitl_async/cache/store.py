"""`StoreCache`: node and task results cached in a checkpoint store that has the cache
capability (`CacheStore`: the in-memory, SQLite, PostgreSQL and Redis drivers), so every process
using the store shares them. `compile(cache=saver)` makes one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hitl_async import _sync
from hitl_async.cache.base import BaseCache, FullKey, Namespace
from hitl_async.checkpoint.capabilities import CacheStore, Capability, require

__all__ = ["StoreCache", "as_cache"]


def _ns(namespace: Namespace) -> str:
    return "|".join(namespace)


class StoreCache(BaseCache[Any]):
    """A `BaseCache` over a store's `CacheStore` capability; values are encoded with `serde`."""

    def __init__(self, store: Any, *, serde: Any | None = None) -> None:
        require(store, Capability.CACHE, needed_for="a node cache in the store (compile(cache=))")
        super().__init__(serde=serde)
        self.store: CacheStore = store

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        by_flat = {(_ns(ns), key): (ns, key) for ns, key in keys}
        found = await self.store.cache_get(list(by_flat))
        return {by_flat[k]: self.serde.loads(v) for k, v in found.items()}

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | float | None]]) -> None:
        entries = [
            (_ns(ns), key, self.serde.dumps(value, channel="cache"), ttl)
            for (ns, key), (value, ttl) in pairs.items()
        ]
        await self.store.cache_set(entries)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        await self.store.cache_clear(None if namespaces is None else [_ns(n) for n in namespaces])

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        return _sync.run(lambda: self.aget(keys))

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | float | None]]) -> None:
        _sync.run(lambda: self.aset(pairs))

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        _sync.run(lambda: self.aclear(namespaces))


def as_cache(cache: Any, serde: Any) -> Any:
    """What `compile(cache=...)` was given, as the engine uses it: a store with the cache
    capability becomes a `StoreCache` over it; a `BaseCache` (or None) stays as it is."""
    from hitl_async.checkpoint.base import BaseSaver

    return StoreCache(cache, serde=serde) if isinstance(cache, BaseSaver) else cache
