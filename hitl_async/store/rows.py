"""Reading a store's rows into LangGraph's items: the `Item`/`SearchItem` of a row, the rows a
batch's puts write, and one search (filtered, paged, or ranked by similarity) on any backend.
"""

from __future__ import annotations

import math
from typing import Any

from hitl_async.store.backend import PutRow, StoreBackend, StoredRow
from hitl_async.store.base import Item, SearchItem, SearchOp
from hitl_async.store.codec import decode_value, from_us, now_us, split_namespace
from hitl_async.store.embed import Embedder, cosine, unpack_vector
from hitl_async.store.filters import Condition, matches
from hitl_async.store.planning import BatchPlan

__all__ = [
    "US_PER_MINUTE",
    "put_rows",
    "row_item",
    "row_search_item",
    "search_rows",
    "semantic_rows",
]

US_PER_MINUTE = 60_000_000


def row_item(row: StoredRow) -> Item:
    """The `Item` of a stored row (built field by field: every field is already checked, and
    reads make many items)."""
    item = Item.__new__(Item)
    item.value = decode_value(row.value, row.namespace, row.key)
    item.key = row.key
    item.namespace = split_namespace(row.namespace)
    item.created_at = created = from_us(row.created_us)
    item.updated_at = created if row.updated_us == row.created_us else from_us(row.updated_us)
    return item


def row_search_item(row: StoredRow, value: Any, score: float | None) -> SearchItem:
    """The `SearchItem` of a stored row whose value is already decoded."""
    item = SearchItem.__new__(SearchItem)
    item.value = value
    item.key = row.key
    item.namespace = split_namespace(row.namespace)
    item.created_at = created = from_us(row.created_us)
    item.updated_at = created if row.updated_us == row.created_us else from_us(row.updated_us)
    item.score = score
    return item


def put_rows(plan: BatchPlan, now: int) -> list[PutRow]:
    """The rows of a batch's puts when none is a delete and nothing is embedded."""
    rows: list[PutRow] = []
    for (ns, key), (op, data) in plan.puts.items():
        assert data is not None
        at = now_us() if rows else now  # every write of a batch has a time of its own
        expires = None if op.ttl is None else at + int(op.ttl * US_PER_MINUTE)
        rows.append(PutRow(ns, key, data, at, expires, op.ttl, None))
    return rows


async def search_rows(
    backend: StoreBackend,
    embeddings: Embedder | None,
    op: SearchOp,
    prefix: str,
    conditions: tuple[Condition, ...],
    live: int | None,
    sync: bool,
) -> list[tuple[SearchItem, StoredRow]]:
    """One search's items with their rows: pushed down to the backend when it can evaluate the
    filter, else filtered here; ranked by similarity when the store embeds and `op` has a query."""
    pushed = backend.pushdown(conditions)
    if op.query and embeddings is not None:
        return await semantic_rows(backend, embeddings, op, prefix, conditions, pushed, live, sync)
    if pushed:
        rows = await backend.query(prefix, conditions, op.limit, op.offset, live, sync)
        return [
            (row_search_item(r, decode_value(r.value, r.namespace, r.key), None), r) for r in rows
        ]
    rows = await backend.query(prefix, (), None, 0, live, sync)
    found = []
    for row in rows:
        value = decode_value(row.value, row.namespace, row.key)
        if matches(value, conditions):
            found.append((row_search_item(row, value, None), row))
    return found[op.offset : op.offset + op.limit]


async def semantic_rows(
    backend: StoreBackend,
    embeddings: Embedder,
    op: SearchOp,
    prefix: str,
    conditions: tuple[Condition, ...],
    pushed: bool,
    live: int | None,
    sync: bool,
) -> list[tuple[SearchItem, StoredRow]]:
    """A semantic search: every candidate scored by the best cosine similarity of its vectors,
    unembedded items after the scored ones."""
    assert op.query is not None
    if sync:
        query = embeddings.query(op.query)
    else:
        query = await embeddings.aquery(op.query)
    qnorm = math.sqrt(sum(x * x for x in query))
    pool = await backend.candidates(prefix, conditions if pushed else (), live, sync)
    scored: list[tuple[float, int, SearchItem, StoredRow]] = []
    unscored: list[tuple[SearchItem, StoredRow]] = []
    pool.sort(key=lambda rv: (-rv[0].updated_us, rv[0].namespace, rv[0].key))
    for rank, (row, blobs) in enumerate(pool):
        value = decode_value(row.value, row.namespace, row.key)
        if not pushed and not matches(value, conditions):
            continue
        if blobs:
            score = max(cosine(query, qnorm, unpack_vector(b)) for b in blobs)
            scored.append((score, rank, row_search_item(row, value, score), row))
        else:
            unscored.append((row_search_item(row, value, None), row))
    scored.sort(key=lambda s: (-s[0], s[1]))
    ranked = [(item, row) for _, _, item, row in scored] + unscored
    return ranked[op.offset : op.offset + op.limit]
