"""Conformance of the cache capability (`CacheStore`): what `compile(cache=saver)` relies on."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from hitl_async.checkpoint.capabilities import CacheStore, Capability

__all__ = ["CacheConformance"]


class CacheConformance:
    """The node cache: entries by (namespace, key), replaced on set, expiring, cleared."""

    pytestmark = pytest.mark.anyio

    async def test_declares_cache(self, saver: Any) -> None:
        assert saver.supports(Capability.CACHE)
        assert isinstance(saver, CacheStore)

    async def test_cache_set_get_replace(self, saver: Any) -> None:
        assert await saver.cache_get([("ns|a", "k1")]) == {}
        await saver.cache_set([("ns|a", "k1", b"one", None), ("ns|a", "k2", b"\x00two", 60)])
        got = await saver.cache_get([("ns|a", "k1"), ("ns|a", "k2"), ("ns|b", "k1")])
        assert got == {("ns|a", "k1"): b"one", ("ns|a", "k2"): b"\x00two"}
        await saver.cache_set([("ns|a", "k1", b"uno", None)])
        assert await saver.cache_get([("ns|a", "k1")]) == {("ns|a", "k1"): b"uno"}

    async def test_cache_entry_expires(self, saver: Any) -> None:
        await saver.cache_set([("ns", "short", b"v", 0.2), ("ns", "long", b"w", 60)])
        await anyio.sleep(0.4)
        assert await saver.cache_get([("ns", "short"), ("ns", "long")]) == {("ns", "long"): b"w"}

    async def test_cache_clear_by_namespace_and_all(self, saver: Any) -> None:
        await saver.cache_set([("a*[x]", "k", b"1", None), ("b", "k", b"2", None)])
        await saver.cache_clear(["a*[x]"])
        assert await saver.cache_get([("a*[x]", "k"), ("b", "k")]) == {("b", "k"): b"2"}
        await saver.cache_clear()
        assert await saver.cache_get([("b", "k")]) == {}
