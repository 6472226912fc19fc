"""Node and task caches, mirroring `langgraph.cache`: `compile(cache=InMemoryCache())` with
`add_node(..., cache_policy=CachePolicy(...))` or `@task(cache_policy=...)` reuses a node's (or
task's) result for the same input instead of running it again, within the policy's ttl."""

from __future__ import annotations

from hitl_async.cache.base import BaseCache, FullKey, Namespace
from hitl_async.cache.memory import InMemoryCache

__all__ = ["BaseCache", "FullKey", "InMemoryCache", "Namespace"]
