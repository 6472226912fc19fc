"""The Redis driver's node cache (`CacheStore`): one string key per entry,
`<prefix>:cache:<namespace>:<key>`, expiring by Redis itself (PX); clearing scans the
namespace's keys (SCAN + UNLINK, never KEYS)."""

from __future__ import annotations

from collections.abc import Sequence

from hitl_async.checkpoint.capabilities import CacheStore
from hitl_async_redis._connection import RedisConnection
from hitl_async_redis._keys import glob_escape

__all__ = ["RedisCache"]


class RedisCache(RedisConnection, CacheStore):
    """Node results cached in plain keys of the saver's prefix (no scripts: each call is one
    pipeline of independent commands)."""

    def _cache_key(self, ns: str, key: str) -> str:
        return f"{self.prefix}:cache:{ns}:{key}"

    async def cache_get(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        """Cached node results of `keys` that have not expired."""
        if not keys:
            return {}
        client = await self.get_client()
        pipe = client.pipeline(transaction=False)
        for ns, key in keys:
            pipe.get(self._cache_key(ns, key))
        values = await pipe.execute()
        return {k: bytes(v) for k, v in zip(keys, values, strict=True) if v is not None}

    async def cache_set(self, entries: Sequence[tuple[str, str, bytes, float | None]]) -> None:
        """Cache node results, each for its ttl (seconds; None: until cleared)."""
        if not entries:
            return
        client = await self.get_client()
        pipe = client.pipeline(transaction=False)
        for ns, key, value, ttl in entries:
            px = None if ttl is None else max(1, int(ttl * 1000))
            pipe.set(self._cache_key(ns, key), bytes(value), px=px)
        await pipe.execute()

    async def cache_clear(self, namespaces: Sequence[str] | None = None) -> None:
        """Delete the cached results of `namespaces` (None: all)."""
        client = await self.get_client()
        patterns = (
            [glob_escape(f"{self.prefix}:cache:") + "*"]
            if namespaces is None
            else [glob_escape(f"{self.prefix}:cache:{ns}:") + "*" for ns in namespaces]
        )
        for pattern in patterns:
            batch: list[bytes] = []
            async for found in client.scan_iter(match=pattern, count=1000):
                batch.append(found)
                if len(batch) >= 1000:
                    await client.unlink(*batch)
                    batch.clear()
            if batch:
                await client.unlink(*batch)
