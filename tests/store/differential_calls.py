"""One sequence of store calls, run on LangGraph's stores (to record the golden file) and on
ours (tests/store/test_differential.py), with results in a comparable, JSON-ready form.

Only the public Store API is used, plus the module holding the op classes (`ops`), so the same
code runs against `langgraph.store` and `hitl_async.store`. Timestamps are reduced to facts
that must hold (created == updated after an insert, updated > created after an update).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

DIMS = 12


def embed(texts: Sequence[str]) -> list[list[float]]:
    """A deterministic embedding: letter counts folded into DIMS buckets, normalized."""
    out = []
    for text in texts:
        vec = [0.0] * DIMS
        for ch in text.lower():
            if ch.isalpha():
                vec[(ord(ch) * 7) % DIMS] += 1.0
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        out.append([x / norm for x in vec])
    return out


def _item(item: Any) -> Any:
    if item is None:
        return None
    out = {"ns": list(item.namespace), "key": item.key, "value": item.value}
    score = getattr(item, "score", None)
    if score is not None:
        out["score"] = round(float(score), 4)
    return out


def _result(result: Any) -> Any:
    if isinstance(result, list):
        return [list(r) if isinstance(r, tuple) else _item(r) for r in result]
    return _item(result)


def _try(fn: Callable[[], Any]) -> Any:
    """The call's result, or the names of the known classes of the error it raised."""
    try:
        return fn()
    except Exception as exc:
        return {"error": [c.__name__ for c in type(exc).__mro__ if c.__name__ in _KNOWN]}


def _error(fn: Callable[[], Any]) -> Any:
    try:
        fn()
    except Exception as exc:
        return {"error": [c.__name__ for c in type(exc).__mro__ if c.__name__ in _KNOWN]}
    return {"error": None}


_KNOWN = {"InvalidNamespaceError", "ValueError", "TypeError", "NotImplementedError"}

DOCS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("users", "alice", "memories"), "m1", {"text": "likes green tea", "n": 1, "tags": ["a"]}),
    (("users", "alice", "memories"), "m2", {"text": "dislikes coffee", "n": 2.5, "flag": True}),
    (("users", "bob", "memories"), "m1", {"text": "likes black tea", "n": 3}),
    (("users", "bob"), "profile", {"name": "Bob", "age": 40, "meta": {"city": "Oslo"}}),
    (("docs",), "d1", {"title": "Alpha", "score": 4.5, "status": "active"}),
    (("docs",), "d2", {"title": "Beta", "score": 3.0, "status": "draft"}),
    (("docs", "archive"), "d0", {"title": "Zero", "score": 1, "status": "active"}),
]

FILTERS: list[dict[str, Any]] = [
    {"n": 1},
    {"n": {"$gt": 1}},
    {"n": {"$gte": 1, "$lt": 3}},
    {"n": {"$lte": 2.5}},
    {"flag": True},
    {"tags": ["a"]},
    {"meta": {"city": "Oslo"}},
    {"text": "likes black tea"},
    {"n": 1.0},
]

DOC_FILTERS: list[dict[str, Any]] = [
    {"status": "active"},
    {"status": {"$ne": "draft"}},
    {"score": {"$gt": 3.2}},
    {"score": {"$eq": 1}},
    {"status": "active", "score": {"$lt": 2}},
]


def run(make: Callable[..., Any], ops: Any, tick: Callable[[], None]) -> dict[str, Any]:
    """Run the sequence on stores made by `make(index=None | dict)` (which may return None: no
    semantic search); `ops` is the module with GetOp/PutOp/SearchOp/ListNamespacesOp; `tick()`
    is called between writes (so each write has its own timestamp on every store)."""
    out: dict[str, Any] = {}
    store = make(index=None)
    for ns, key, value in DOCS:
        store.put(ns, key, value)
        tick()
    for ns, key, _ in DOCS:
        out[f"get {ns} {key}"] = _try(lambda ns=ns, key=key: _result(store.get(ns, key)))
    out["get missing key"] = _try(lambda: _result(store.get(("docs",), "nope")))
    out["get other namespace"] = _try(lambda: _result(store.get(("users", "alice"), "m1")))
    out["search users"] = _try(lambda: _result(store.search(("users",))))
    out["search docs"] = _try(lambda: _result(store.search(("docs",))))
    out["search everything"] = _try(lambda: _result(store.search((), limit=100)))
    for f in FILTERS:
        out[f"search users filter {json.dumps(f)}"] = _try(
            lambda f=f: _result(store.search(("users",), filter=f))
        )
    for f in DOC_FILTERS:
        out[f"search docs filter {json.dumps(f)}"] = _try(
            lambda f=f: _result(store.search(("docs",), filter=f))
        )
    out["search limit 2"] = _try(lambda: _result(store.search((), limit=2)))
    out["search limit 2 offset 2"] = _try(lambda: _result(store.search((), limit=2, offset=2)))
    out["search offset 6"] = _try(lambda: _result(store.search((), offset=6)))
    out["search prefix boundary"] = _try(lambda: _result(store.search(("user",))))
    out["search query without index"] = _try(
        lambda: _result(store.search(("docs",), query="alpha"))
    )
    out["list all"] = _try(lambda: _result(store.list_namespaces()))
    out["list prefix users"] = _try(lambda: _result(store.list_namespaces(prefix=("users",))))
    out["list suffix memories"] = _try(lambda: _result(store.list_namespaces(suffix=("memories",))))
    out["list wildcard"] = _try(
        lambda: _result(store.list_namespaces(prefix=("users", "*", "memories")))
    )
    out["list max_depth 2"] = _try(lambda: _result(store.list_namespaces(max_depth=2)))
    out["list limit offset"] = _try(lambda: _result(store.list_namespaces(limit=2, offset=1)))

    store.put(("users", "alice", "memories"), "m1", {"text": "likes oolong tea", "n": 1.5})
    tick()
    updated = store.get(("users", "alice", "memories"), "m1")
    out["update value"] = _try(lambda: _result(updated))
    out["update keeps created_at"] = bool(updated.created_at < updated.updated_at)
    out["search after update"] = _try(lambda: _result(store.search(("users",))))
    store.delete(("users", "alice", "memories"), "m2")
    store.delete(("docs", "archive"), "d0")
    tick()
    out["get deleted"] = _try(lambda: _result(store.get(("users", "alice", "memories"), "m2")))
    out["list after deletes"] = _try(lambda: _result(store.list_namespaces()))
    out["search after deletes"] = _try(lambda: _result(store.search((), limit=100)))

    batch = store.batch(
        [
            ops.GetOp(("docs",), "d1"),
            ops.PutOp(("docs",), "d3", {"title": "Gamma"}),
            ops.SearchOp(("docs",), {"status": "active"}, 10, 0),
            ops.ListNamespacesOp(None, None, 10, 0),
            ops.GetOp(("docs",), "d3"),
        ]
    )
    out["batch"] = [_result(r) for r in batch]
    out["after batch"] = _try(lambda: _result(store.get(("docs",), "d3")))

    out["error empty namespace"] = _error(lambda: store.put((), "k", {"v": 1}))
    out["error dotted label"] = _error(lambda: store.put(("a.b",), "k", {"v": 1}))
    out["error empty label"] = _error(lambda: store.put(("a", ""), "k", {"v": 1}))
    out["error reserved root"] = _error(lambda: store.put(("langgraph", "x"), "k", {"v": 1}))

    vectors = make(index={"dims": DIMS, "embed": embed, "fields": ["text"]})
    if vectors is None:  # this store has no semantic search here (LangGraph's without pgvector)
        return out
    for key, text in [("a", "apple pie"), ("b", "banana bread"), ("c", "cherry tart")]:
        vectors.put(("food",), key, {"text": text, "kind": "sweet" if key != "b" else "bread"})
        tick()
    vectors.put(("food",), "n", {"text": "no vector here"}, index=False)
    tick()
    out["semantic apple"] = _try(lambda: _result(vectors.search(("food",), query="apple", limit=3)))
    out["semantic tart filtered"] = _result(
        vectors.search(("food",), query="tart", filter={"kind": "sweet"})
    )
    out["semantic page 2"] = _try(
        lambda: _result(vectors.search(("food",), query="bread", limit=2, offset=1))
    )
    out["semantic fields override"] = _result(
        _reindexed(vectors, tick).search(("food",), query="crumble", limit=2)
    )
    return out


def _reindexed(store: Any, tick: Callable[[], None]) -> Any:
    store.put(("food",), "d", {"text": "x", "alt": "crumble"}, index=["alt"])
    tick()
    return store


def ticker(seconds: float = 0.003) -> Callable[[], None]:
    """A `tick` that waits a little, so consecutive writes never share a timestamp."""
    return lambda: time.sleep(seconds)
