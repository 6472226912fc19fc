"""`InMemoryCache`: node and task results cached in this process (mirrors
`langgraph.cache.memory.InMemoryCache`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from hitl_async.cache.base import BaseCache, FullKey, Namespace
from hitl_async.checkpoint.lifecycle import after_fork_in_child

__all__ = ["InMemoryCache"]


class InMemoryCache(BaseCache[Any]):
    """A process-local cache; thread-safe. Values are stored encoded (a hit is a fresh copy);
    an expired value is dropped when it is next read."""

    any_loop = True

    def __init__(self, *, serde: Any | None = None) -> None:
        super().__init__(serde=serde)
        self._data: dict[Namespace, dict[str, tuple[bytes, float | None]]] = {}
        self._lock = threading.Lock()
        after_fork_in_child(self, _fresh_lock)

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        """The values still cached for `keys`."""
        now = time.time()
        found: dict[FullKey, bytes] = {}
        with self._lock:
            for ns, key in keys:
                entry = self._data.get(ns, {}).get(key)
                if entry is None:
                    continue
                data, expiry = entry
                if expiry is not None and now >= expiry:
                    del self._data[ns][key]
                    continue
                found[(ns, key)] = data
        return {k: self.serde.loads(v) for k, v in found.items()}

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, Any]:
        return self.get(keys)

    def set(self, pairs: Mapping[FullKey, tuple[Any, int | float | None]]) -> None:
        """Cache each value for its ttl (seconds; None: until cleared)."""
        now = time.time()
        encoded = {
            k: (self.serde.dumps(value, channel="cache"), None if ttl is None else now + ttl)
            for k, (value, ttl) in pairs.items()
        }
        with self._lock:
            for (ns, key), entry in encoded.items():
                self._data.setdefault(ns, {})[key] = entry

    async def aset(self, pairs: Mapping[FullKey, tuple[Any, int | float | None]]) -> None:
        self.set(pairs)

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Forget the values of `namespaces` (None: all)."""
        with self._lock:
            if namespaces is None:
                self._data.clear()
            else:
                for ns in namespaces:
                    self._data.pop(tuple(ns), None)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        self.clear(namespaces)


def _fresh_lock(cache: InMemoryCache) -> None:
    """In a forked child: a new lock (another thread may have held the parent's at the fork)."""
    cache._lock = threading.Lock()
