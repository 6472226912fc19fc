"""`InMemoryStore`: the store in this process's memory, as `langgraph.store.memory` has it.

For development and tests (data is lost when the process exits). It behaves exactly like the
durable drivers (same validation, filters, order, TTLs and semantic search; the conformance suite
runs on all of them). Values are kept as JSON bytes, so an item handed out is a copy: mutating it
never changes the store. It is safe to share between threads.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import orjson

from hitl_async.store.backend import PutRow, StoredRow
from hitl_async.store.base import IndexConfig, Item, TTLConfig, ensure_refresh
from hitl_async.store.codec import (
    check_key,
    check_namespace,
    decode_value,
    from_us,
    namespace_text,
)
from hitl_async.store.driver import BackendStore
from hitl_async.store.filters import Condition, matches

__all__ = ["InMemoryStore", "MemoryBackend"]


class _Record(NamedTuple):
    value: bytes
    parsed: dict[str, Any]
    created_us: int
    updated_us: int
    ttl_minutes: float | None
    expires_us: int | None
    vectors: list[bytes]


def _under(namespace: str, prefix: str) -> bool:
    return not prefix or namespace == prefix or namespace.startswith(prefix + ".")


class MemoryBackend:
    """Dicts behind a lock: namespace text -> key -> record."""

    sync_capable = True

    def __init__(self) -> None:
        self.data: dict[str, dict[str, _Record]] = {}
        self.lock = threading.Lock()

    def pushdown(self, conditions: tuple[Condition, ...]) -> bool:
        return True

    async def setup(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    @staticmethod
    def _row(ns: str, key: str, rec: _Record) -> StoredRow:
        return StoredRow(ns, key, rec.value, rec.created_us, rec.updated_us, rec.ttl_minutes)

    @staticmethod
    def _live(rec: _Record, live_after: int | None) -> bool:
        return live_after is None or rec.expires_us is None or rec.expires_us > live_after

    async def fetch(
        self, refs: list[tuple[str, str]], live_after: int | None, sync: bool
    ) -> list[StoredRow | None]:
        out: list[StoredRow | None] = []
        with self.lock:
            for ns, key in refs:
                rec = self.data.get(ns, {}).get(key)
                ok = rec is not None and self._live(rec, live_after)
                out.append(self._row(ns, key, rec) if ok and rec is not None else None)
        return out

    async def write(self, puts: list[PutRow], deletes: list[tuple[str, str]], sync: bool) -> None:
        with self.lock:
            for ns, key in deletes:
                bucket = self.data.get(ns)
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        del self.data[ns]
            for row in puts:
                bucket = self.data.setdefault(row.namespace, {})
                old = bucket.get(row.key)
                created = row.now_us if old is None else old.created_us
                if row.vectors is not None:
                    vectors = [blob for _, blob in row.vectors]
                else:
                    vectors = old.vectors if old is not None else []
                bucket[row.key] = _Record(
                    row.value,
                    orjson.loads(row.value),
                    created,
                    row.now_us,
                    row.ttl_minutes,
                    row.expires_us,
                    vectors,
                )

    async def touch(self, refs: list[tuple[str, str]], now_us: int, sync: bool) -> None:
        with self.lock:
            for ns, key in refs:
                bucket = self.data.get(ns)
                rec = bucket.get(key) if bucket is not None else None
                if bucket is not None and rec is not None and rec.ttl_minutes is not None:
                    expires = now_us + int(rec.ttl_minutes * 60_000_000)
                    bucket[key] = rec._replace(expires_us=expires)

    def _select(
        self, prefix: str, conditions: tuple[Condition, ...], live_after: int | None
    ) -> list[tuple[str, str, _Record]]:
        with self.lock:
            found = [
                (ns, key, rec)
                for ns, bucket in self.data.items()
                if _under(ns, prefix)
                for key, rec in bucket.items()
                if self._live(rec, live_after) and matches(rec.parsed, conditions)
            ]
        found.sort(key=lambda f: (-f[2].updated_us, f[0], f[1]))
        return found

    async def query(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        limit: int | None,
        offset: int,
        live_after: int | None,
        sync: bool,
    ) -> list[StoredRow]:
        found = self._select(prefix, conditions, live_after)
        end = None if limit is None else offset + limit
        return [self._row(ns, key, rec) for ns, key, rec in found[offset:end]]

    async def candidates(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        live_after: int | None,
        sync: bool,
    ) -> list[tuple[StoredRow, list[bytes]]]:
        found = self._select(prefix, conditions, live_after)
        return [(self._row(ns, key, rec), rec.vectors) for ns, key, rec in found]

    async def namespaces(self, prefix: str, live_after: int | None, sync: bool) -> list[str]:
        with self.lock:
            return [
                ns
                for ns, bucket in self.data.items()
                if _under(ns, prefix)
                and any(self._live(rec, live_after) for rec in bucket.values())
            ]

    async def sweep(self, now_us: int, sync: bool) -> int:
        swept = 0
        with self.lock:
            for ns in list(self.data):
                bucket = self.data[ns]
                dead = [
                    k
                    for k, r in bucket.items()
                    if r.expires_us is not None and r.expires_us <= now_us
                ]
                for key in dead:
                    del bucket[key]
                swept += len(dead)
                if not bucket:
                    del self.data[ns]
        return swept


class InMemoryStore(BackendStore):
    """A store in this process's memory, with TTLs and optional semantic search.

    `InMemoryStore(index={"embed": fn, "dims": N, "fields": [...]}, ttl={"default_ttl": 60})`;
    see `BackendStore` for both options.
    """

    def __init__(self, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None) -> None:
        self._memory = MemoryBackend()
        super().__init__(self._memory, index=index, ttl=ttl)

    def _fast_get(self, namespace: tuple[str, ...], key: str, refresh: bool) -> Item | None:
        """`get` without the batch machinery (the common case: read one item)."""
        ns = namespace_text(check_namespace(namespace))
        key = check_key(key)
        memory = self._memory
        with memory.lock:
            bucket = memory.data.get(ns)
            rec = bucket.get(key) if bucket is not None else None
        if rec is None or rec.expires_us is not None:
            return super().get(namespace, key, refresh_ttl=refresh) if rec is not None else None
        return Item(
            value=decode_value(rec.value, ns, key),
            key=key,
            namespace=tuple(namespace),
            created_at=from_us(rec.created_us),
            updated_at=from_us(rec.updated_us),
        )

    def get(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """The item at `namespace`/`key`, or None."""
        return self._fast_get(namespace, key, ensure_refresh(self.ttl_config, refresh_ttl))

    async def aget(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """Async `get` (never waits: the data is in memory)."""
        return self._fast_get(namespace, key, ensure_refresh(self.ttl_config, refresh_ttl))
