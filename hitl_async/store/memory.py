"""`InMemoryStore`: the store in this process's memory, as `langgraph.store.memory` has it.

For development and tests (data is lost when the process exits). It behaves exactly like the
durable drivers (same validation, filters, order, TTLs and semantic search; the conformance suite
runs on all of them). Values are kept as JSON bytes, so an item handed out is a copy: mutating it
never changes the store. It is safe to share between threads.

Each namespace's items are kept in the order of their last update, so a search walks them
newest first and stops once it has a page; `get`, `put` and `search` without a query take a
direct path that skips the batch machinery (same checks, same results).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Literal, cast

import orjson

from hitl_async.checkpoint.lifecycle import after_fork_in_child
from hitl_async.store.backend import PutRow, StoredRow
from hitl_async.store.base import (
    NOT_PROVIDED,
    IndexConfig,
    Item,
    NotProvided,
    SearchItem,
    TTLConfig,
    ensure_refresh,
    ensure_ttl,
)
from hitl_async.store.codec import (
    check_key,
    checked_prefix_text,
    checked_text,
    encode_checked,
    from_us,
    now_us,
    split_namespace,
)
from hitl_async.store.driver import BackendStore
from hitl_async.store.errors import InvalidStoreRequestError, StoreCorruptError
from hitl_async.store.filters import Condition, compiled, predicate

__all__ = ["InMemoryStore", "MemoryBackend"]

_US_PER_MINUTE = 60_000_000


class _Rec:
    """One stored item: its JSON, a parsed copy for filters, times, TTL and vectors."""

    __slots__ = (
        "created",
        "created_us",
        "expires_us",
        "key",
        "ns",
        "nst",
        "parsed",
        "ttl_minutes",
        "updated",
        "updated_us",
        "value",
        "vectors",
    )

    def __init__(
        self,
        ns: str,
        nst: tuple[str, ...],
        key: str,
        value: bytes,
        parsed: dict[str, Any],
        created_us: int,
        updated_us: int,
        ttl_minutes: float | None,
        expires_us: int | None,
        vectors: list[bytes],
    ) -> None:
        self.ns = ns
        self.nst = nst
        self.key = key
        self.value = value
        self.parsed = parsed
        self.created_us = created_us
        self.updated_us = updated_us
        self.ttl_minutes = ttl_minutes
        self.expires_us = expires_us
        self.vectors = vectors
        self.created: datetime | None = None
        self.updated: datetime | None = None

    def times(self) -> tuple[datetime, datetime]:
        """The created/updated datetimes (made once, then shared: datetimes are immutable)."""
        created, updated = self.created, self.updated
        if updated is None:
            updated = self.updated = from_us(self.updated_us)
        if created is None:
            same = self.created_us == self.updated_us
            created = self.created = updated if same else from_us(self.created_us)
        return created, updated


def _under(namespace: str, prefix: str) -> bool:
    return not prefix or namespace == prefix or namespace.startswith(prefix + ".")


def _live(rec: _Rec, live_after: int | None) -> bool:
    return live_after is None or rec.expires_us is None or rec.expires_us > live_after


def _value(rec: _Rec, ns: str, key: str) -> dict[str, Any]:
    try:
        return cast(dict[str, Any], orjson.loads(rec.value))
    except orjson.JSONDecodeError as exc:  # only if someone wrote into the store's dicts
        raise StoreCorruptError(f"the stored value of ({ns!r}) / {key!r} is damaged") from exc


class MemoryBackend:
    """Dicts behind a lock: namespace text -> key -> record, each namespace in update order.

    `below` counts, for every proper prefix of a stored namespace, the namespaces under it, so a
    search of a namespace without children reads that one dict and nothing else."""

    sync_capable = True

    def __init__(self) -> None:
        self.data: dict[str, dict[str, _Rec]] = {}
        self.labels: dict[str, tuple[str, ...]] = {}
        self.below: dict[str, int] = {}
        self.lock = threading.Lock()
        after_fork_in_child(self, _fresh_lock)

    def _bucket(self, ns: str) -> dict[str, _Rec]:
        """A new namespace's dict (call with the lock held)."""
        bucket: dict[str, _Rec] = {}
        self.data[ns] = bucket
        labels = self.labels[ns] = split_namespace(ns)
        for depth in range(1, len(labels)):
            above = ".".join(labels[:depth])
            self.below[above] = self.below.get(above, 0) + 1
        return bucket

    def _drop(self, ns: str) -> None:
        """Forget an emptied namespace (call with the lock held)."""
        del self.data[ns]
        labels = self.labels.pop(ns)
        for depth in range(1, len(labels)):
            above = ".".join(labels[:depth])
            left = self.below[above] - 1
            if left:
                self.below[above] = left
            else:
                del self.below[above]

    def pushdown(self, conditions: tuple[Condition, ...]) -> bool:
        return True

    async def setup(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    @staticmethod
    def _row(ns: str, key: str, rec: _Rec) -> StoredRow:
        return StoredRow(ns, key, rec.value, rec.created_us, rec.updated_us, rec.ttl_minutes)

    async def fetch(
        self, refs: list[tuple[str, str]], live_after: int | None, sync: bool
    ) -> list[StoredRow | None]:
        out: list[StoredRow | None] = []
        with self.lock:
            for ns, key in refs:
                bucket = self.data.get(ns)
                rec = bucket.get(key) if bucket is not None else None
                ok = rec is not None and _live(rec, live_after)
                out.append(self._row(ns, key, rec) if ok and rec is not None else None)
        return out

    def store(
        self,
        ns: str,
        key: str,
        value: bytes,
        parsed: dict[str, Any],
        now: int,
        ttl: float | None,
        vectors: list[bytes] | None,
    ) -> None:
        """Insert or replace one item (call with the lock held); it moves to the newest end.
        Its datetimes are made when it is first read."""
        bucket = self.data.get(ns)
        if bucket is None:
            bucket = self._bucket(ns)
        old = bucket.pop(key, None)
        expires = None if ttl is None else now + int(ttl * _US_PER_MINUTE)
        if old is None:
            bucket[key] = _Rec(
                ns, self.labels[ns], key, value, parsed, now, now, ttl, expires, vectors or []
            )
            return
        if vectors is None:
            vectors = old.vectors
        rec = bucket[key] = _Rec(
            ns, old.nst, key, value, parsed, old.created_us, now, ttl, expires, vectors
        )
        rec.created = old.created

    async def write(self, puts: list[PutRow], deletes: list[tuple[str, str]], sync: bool) -> None:
        parsed = [orjson.loads(p.value) for p in puts]
        with self.lock:
            for ns, key in deletes:
                bucket = self.data.get(ns)
                if bucket is not None:
                    bucket.pop(key, None)
                    if not bucket:
                        self._drop(ns)
            for p, copy in zip(puts, parsed, strict=True):
                vectors = None if p.vectors is None else [blob for _, blob in p.vectors]
                self.store(p.namespace, p.key, p.value, copy, p.now_us, p.ttl_minutes, vectors)

    async def touch(self, refs: list[tuple[str, str]], now_us: int, sync: bool) -> None:
        with self.lock:
            for ns, key in refs:
                bucket = self.data.get(ns)
                rec = bucket.get(key) if bucket is not None else None
                if rec is not None and rec.ttl_minutes is not None:
                    rec.expires_us = now_us + int(rec.ttl_minutes * _US_PER_MINUTE)

    def page(
        self,
        prefix: str,
        test: Callable[[dict[str, Any]], bool],
        live_after: int | None,
        offset: int,
        limit: int | None,
    ) -> list[_Rec]:
        """Items under `prefix` passing `test`, most recently updated first, from `offset`, at
        most `limit`: each namespace is already in update order, so the walk stops at the end
        of the page, and several namespaces are merged, not sorted."""
        end = None if limit is None else offset + limit
        out: list[_Rec] = []
        with self.lock:
            if prefix and prefix not in self.below:  # one namespace, nothing under it
                bucket = self.data.get(prefix)
                streams = [] if bucket is None else [reversed(bucket.values())]
            else:
                streams = [
                    reversed(bucket.values())
                    for ns, bucket in self.data.items()
                    if _under(ns, prefix)
                ]
            ordered: Iterator[_Rec]
            if len(streams) == 1:
                ordered = streams[0]
            else:
                ordered = heapq.merge(*streams, key=lambda r: (-r.updated_us, r.ns, r.key))
            seen = 0
            for rec in ordered:
                if not (_live(rec, live_after) and test(rec.parsed)):
                    continue
                if end is not None and seen >= end:
                    break
                if seen >= offset:
                    out.append(rec)
                seen += 1
        return out

    async def query(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        limit: int | None,
        offset: int,
        live_after: int | None,
        sync: bool,
    ) -> list[StoredRow]:
        recs = self.page(prefix, predicate(conditions), live_after, offset, limit)
        return [self._row(rec.ns, rec.key, rec) for rec in recs]

    async def candidates(
        self,
        prefix: str,
        conditions: tuple[Condition, ...],
        live_after: int | None,
        sync: bool,
    ) -> list[tuple[StoredRow, list[bytes]]]:
        recs = self.page(prefix, predicate(conditions), live_after, 0, None)
        return [(self._row(rec.ns, rec.key, rec), rec.vectors) for rec in recs]

    async def namespaces(self, prefix: str, live_after: int | None, sync: bool) -> list[str]:
        with self.lock:
            return [
                ns
                for ns, bucket in self.data.items()
                if _under(ns, prefix) and any(_live(rec, live_after) for rec in bucket.values())
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
                    self._drop(ns)
        return swept


class InMemoryStore(BackendStore):
    """A store in this process's memory, with TTLs and optional semantic search.

    `InMemoryStore(index={"embed": fn, "dims": N, "fields": [...]}, ttl={"default_ttl": 60})`;
    see `BackendStore` for both options.
    """

    def __init__(self, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None) -> None:
        self._memory = MemoryBackend()
        super().__init__(self._memory, index=index, ttl=ttl, group_commit=False)
        self._default_ttl = ensure_ttl(ttl, NOT_PROVIDED)

    # The direct paths below give the same results as the batch path (`BackendStore._run`).

    def _direct_get(self, namespace: tuple[str, ...], key: str, refresh: bool) -> Item | None:
        ns = checked_text(namespace)
        if type(key) is not str or "\x00" in key:
            key = check_key(key)
        bucket = self._memory.data.get(ns)  # a dict lookup is atomic: no lock needed
        rec = bucket.get(key) if bucket is not None else None
        if rec is None:
            return None
        if rec.ttl_minutes is not None:  # expiry and refresh: the batch path
            return super().get(namespace, key, refresh_ttl=refresh)
        created, updated = rec.times()
        item = Item.__new__(Item)
        item.value = _value(rec, ns, key)
        item.key = key
        item.namespace = rec.nst
        item.created_at = created
        item.updated_at = updated
        return item

    def get(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """The item at `namespace`/`key`, or None."""
        return self._direct_get(namespace, key, ensure_refresh(self.ttl_config, refresh_ttl))

    async def aget(
        self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """Async `get` (never waits: the data is in memory)."""
        return self._direct_get(namespace, key, ensure_refresh(self.ttl_config, refresh_ttl))

    def _direct_put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        index: Literal[False] | list[str] | None,
        ttl: float | NotProvided | None,
    ) -> bool:
        """Store directly when no embedding is needed; False to take the batch path."""
        if self.embeddings is not None and index is not False:
            return False
        text = checked_text(namespace, put=True)
        if type(key) is not str or "\x00" in key:
            key = check_key(key)
        minutes = self._default_ttl if ttl is NOT_PROVIDED else ensure_ttl(self.ttl_config, ttl)
        if (
            index is not None
            and index is not False
            and not (isinstance(index, list) and all(isinstance(path, str) for path in index))
        ):
            raise InvalidStoreRequestError(
                f"put index= is False, None or a list of field paths, got {index!r}"
            )
        data, copy = encode_checked(namespace, key, value)
        vectors: list[bytes] | None = [] if self.embeddings is not None else None
        memory = self._memory
        now = now_us()
        with memory.lock:
            memory.store(text, key, data, copy, now, minutes, vectors)
        return True

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Store `value` (a JSON dict) at `namespace`/`key`, replacing what was there."""
        if not self._direct_put(namespace, key, value, index, ttl):
            super().put(namespace, key, value, index, ttl=ttl)

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: dict[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Async `put` (waits only for an async embedding function)."""
        if not self._direct_put(namespace, key, value, index, ttl):
            await super().aput(namespace, key, value, index, ttl=ttl)

    def _direct_search(
        self,
        namespace_prefix: tuple[str, ...],
        query: str | None,
        filter: dict[str, Any] | None,
        limit: int,
        offset: int,
        refresh: bool,
    ) -> list[SearchItem] | None:
        """Search directly without a semantic query; None to take the batch path."""
        if query and self.embeddings is not None:
            return None
        if query is not None and not isinstance(query, str):
            raise InvalidStoreRequestError(f"search query is a str, got {query!r}")
        if type(limit) is not int or type(offset) is not int or limit < 0 or offset < 0:
            for name, count in (("limit", limit), ("offset", offset)):
                if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                    raise InvalidStoreRequestError(
                        f"search {name} must be an int >= 0, got {count!r}"
                    )
        prefix = checked_prefix_text(namespace_prefix)
        test = compiled(filter)[1]
        live = now_us() if self._omit_expired else None
        found: list[SearchItem] = []
        touched: list[tuple[str, str]] = []
        for rec in self._memory.page(prefix, test, live, offset, limit):
            ns, key = rec.ns, rec.key
            created, updated = rec.times()
            item = SearchItem.__new__(SearchItem)
            item.value = _value(rec, ns, key)
            item.key = key
            item.namespace = rec.nst
            item.created_at = created
            item.updated_at = updated
            item.score = None
            found.append(item)
            if refresh and rec.ttl_minutes is not None:
                touched.append((ns, key))
        if touched:
            now = now_us()
            with self._memory.lock:
                for ns, key in touched:
                    kept = self._memory.data.get(ns, {}).get(key)
                    if kept is not None and kept.ttl_minutes is not None:
                        kept.expires_us = now + int(kept.ttl_minutes * _US_PER_MINUTE)
        return found

    def search(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Items under `namespace_prefix` matching `filter`, most recently updated first, or by
        similarity to `query` when the store has an index."""
        refresh = ensure_refresh(self.ttl_config, refresh_ttl)
        found = self._direct_search(namespace_prefix, query, filter, limit, offset, refresh)
        if found is not None:
            return found
        return super().search(
            namespace_prefix,
            query=query,
            filter=filter,
            limit=limit,
            offset=offset,
            refresh_ttl=refresh_ttl,
        )

    async def asearch(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Async `search` (waits only for an async embedding function)."""
        refresh = ensure_refresh(self.ttl_config, refresh_ttl)
        found = self._direct_search(namespace_prefix, query, filter, limit, offset, refresh)
        if found is not None:
            return found
        return await super().asearch(
            namespace_prefix,
            query=query,
            filter=filter,
            limit=limit,
            offset=offset,
            refresh_ttl=refresh_ttl,
        )


def _fresh_lock(backend: MemoryBackend) -> None:
    """In a forked child: a new lock (another thread may have held the parent's at the fork)."""
    backend.lock = threading.Lock()
