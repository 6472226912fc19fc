"""Bad input to a store is a clear error and changes nothing, on every driver; injection-shaped
keys are stored as plain text; damaged stored data is detected, never returned as a value."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from typing import Any

import pytest
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service

from hitl_async import (
    InvalidNamespaceError,
    InvalidStoreRequestError,
    StoreCorruptError,
    StoreValueError,
)
from hitl_async.store import (
    BackendStore,
    GetOp,
    ListNamespacesOp,
    PutOp,
    SearchOp,
    connect_store,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        ((), "cannot be empty"),
        (("the", "thing.about"), "cannot contain periods"),
        (("some", "fun", ""), "cannot be empty strings"),
        (("a", 1), "must be strings"),
        (("a", ["b"]), "must be strings"),  # an unhashable label, not a TypeError
        (("a\x00b",), "NUL"),
        ("users", "tuple of strings"),
        (("langgraph", "foo"), "reserved"),
    ],
)
async def test_bad_namespaces(store: BackendStore, namespace: Any, message: str) -> None:
    with pytest.raises(InvalidNamespaceError, match=message):
        await store.aput(namespace, "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError, match=message):
        store.put(namespace, "k", {"v": 1})
    if message != "reserved":  # reads accept the reserved root
        with pytest.raises(InvalidNamespaceError, match=message):
            await store.aget(namespace, "k")
    assert await store.alist_namespaces() == []


async def test_reserved_root_is_only_refused_by_put(store: BackendStore) -> None:
    # As in LangGraph: put() refuses ("langgraph", ...); batch() (internal use) accepts it.
    await store.aput(("foo", "langgraph", "foo"), "bar", {"a": 1})
    await store.abatch([PutOp(("langgraph", "foo"), "bar", {"a": 1})])
    assert (await store.aget(("langgraph", "foo"), "bar")).value == {"a": 1}  # type: ignore[union-attr]
    assert len(await store.asearch(("langgraph",))) == 1
    await store.adelete(("langgraph", "foo"), "bar")
    assert await store.aget(("langgraph", "foo"), "bar") is None


async def test_reads_refuse_namespaces_that_cannot_exist(store: BackendStore) -> None:
    # ("a.b",) would alias ("a", "b") in storage; it is refused rather than answered.
    await store.aput(("a", "b"), "k", {"v": 1})
    with pytest.raises(InvalidNamespaceError):
        await store.aget(("a.b",), "k")
    with pytest.raises(InvalidNamespaceError):
        await store.asearch(("a.b",))
    with pytest.raises(InvalidNamespaceError):
        await store.alist_namespaces(prefix=("a.b",))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"when": dt.datetime(2024, 1, 1)}, r"value\['when'\] is a datetime"),
        ({"id": uuid.uuid4()}, r"value\['id'\] is a UUID"),
        ({"deep": {"list": [1, b"x"]}}, r"value\['deep'\]\['list'\]\[1\] is a bytes"),
        ({"n": float("nan")}, "JSON cannot represent"),
        ({"n": float("inf")}, "JSON cannot represent"),
        ({"n": 2**64}, "64-bit"),
        ({1: "x"}, "has a int key"),
        ({"s": {1, 2}}, "is a set"),
        ({"s": "nul\x00"}, "NUL"),
        (["not", "a", "dict"], "a store value is a dict"),
        ("text", "a store value is a dict"),
    ],
)
async def test_values_that_are_not_json_are_refused(
    store: BackendStore, value: Any, message: str
) -> None:
    await store.aput(("v",), "k", {"before": True})
    with pytest.raises(StoreValueError, match=message) as info:
        await store.aput(("v",), "k", value)
    assert "('v',)" in str(info.value) and "'k'" in str(info.value)
    assert (await store.aget(("v",), "k")).value == {"before": True}  # type: ignore[union-attr]


async def test_deep_values_are_refused_not_crashing(store: BackendStore) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["n"] = {}
        node = node["n"]
    with pytest.raises(StoreValueError, match="deeper than"):
        await store.aput(("v",), "k", deep)


async def test_a_bad_operation_fails_the_whole_batch_before_any_write(store: BackendStore) -> None:
    with pytest.raises(StoreValueError):
        await store.abatch([PutOp(("b",), "ok", {"v": 1}), PutOp(("b",), "bad", {"v": object()})])
    with pytest.raises(InvalidStoreRequestError):
        await store.abatch([PutOp(("b",), "ok", {"v": 1}), SearchOp(("b",), limit=-1)])
    with pytest.raises(InvalidStoreRequestError):
        await store.abatch([PutOp(("b",), "ok", {"v": 1}), ListNamespacesOp(max_depth=0)])
    with pytest.raises(InvalidStoreRequestError, match="unknown store operation"):
        await store.abatch([PutOp(("b",), "ok", {"v": 1}), ("get", "b")])  # type: ignore[list-item]
    assert await store.alist_namespaces() == []


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.asearch(("x",), limit=-1),
        lambda s: s.asearch(("x",), offset=-5),
        lambda s: s.asearch(("x",), limit="10"),
        lambda s: s.asearch(("x",), query=5),
        lambda s: s.alist_namespaces(limit=-1),
        lambda s: s.aput(("x",), "k", {"v": 1}, index="text"),
        lambda s: s.aget(("x",), "nul\x00key"),
        lambda s: s.abatch([GetOp(("x",), "k\x00")]),
    ],
)
async def test_bad_arguments(store: BackendStore, call: Any) -> None:
    with pytest.raises(InvalidStoreRequestError):
        await call(store)


INERT_KEYS = [
    "'; DROP TABLE store_items; --",
    "*",
    "?",
    "[a-z]",
    "a\\b",
    "%_",
    "key with spaces",
    "ключ",
    "a.b.c",
    "",
    "\n",
    "k" * 1000,
]


async def test_injection_shaped_keys_are_stored_inertly(store: BackendStore) -> None:
    for i, key in enumerate(INERT_KEYS):
        await store.aput(("keys",), key, {"i": i})
    await store.aput(("keys", "child"), "*", {"i": -1})
    for i, key in enumerate(INERT_KEYS):
        item = await store.aget(("keys",), key)
        assert item is not None and item.key == key and item.value == {"i": i}
    found = await store.asearch(("keys",), limit=100)
    assert sorted(i.key for i in found) == sorted([*INERT_KEYS, "*"])
    await store.adelete(("keys",), "*")
    assert await store.aget(("keys",), "*") is None
    assert await store.aget(("keys", "child"), "*") is not None
    assert await store.aget(("keys",), "?") is not None
    assert await store.alist_namespaces() == [("keys",), ("keys", "child")]
    # Keys are strings: LangGraph calls str() on them.
    await store.aput(("keys",), 5, {"int": True})  # type: ignore[arg-type]
    assert (await store.aget(("keys",), "5")).value == {"int": True}  # type: ignore[union-attr]


async def _check_damage_detected(store: BackendStore) -> None:
    with pytest.raises(StoreCorruptError, match=r"\('d'\) / 'k'.*damaged"):
        await store.aget(("d",), "k")
    with pytest.raises(StoreCorruptError, match="not an object"):
        await store.aget(("d",), "list")
    with pytest.raises(StoreCorruptError):
        await store.asearch(("d",))
    await store.adelete(("d",), "k")  # a damaged item can still be deleted
    await store.adelete(("d",), "list")
    assert await store.asearch(("d",)) == []


async def test_damaged_sqlite_value_is_detected(tmp_path: Any) -> None:
    require_package("hitl_async_sqlite", "drivers/sqlite")
    path = tmp_path / "damaged.db"
    store = connect_store(f"sqlite:///{path}")
    await store.aput(("d",), "k", {"v": 1})
    await store.aput(("d",), "list", {"v": 2})
    conn = sqlite3.connect(path)
    conn.execute("UPDATE store_items SET value = '{\"v\": 1' WHERE key = 'k'")
    conn.execute("UPDATE store_items SET value = '[1, 2]' WHERE key = 'list'")
    conn.commit()
    conn.close()
    await _check_damage_detected(store)
    await store.aclose()


async def test_damaged_redis_value_is_detected() -> None:
    require_package("hitl_async_redis", "drivers/redis")
    require_service("redis", REDIS_URL)
    from redis.asyncio import Redis

    prefix = f"s{uuid.uuid4().hex[:12]}"
    store = connect_store(REDIS_URL, prefix=prefix)
    await store.aput(("d",), "k", {"v": 1})
    await store.aput(("d",), "list", {"v": 2})
    client = Redis.from_url(REDIS_URL)
    await client.hset(f"{prefix}:store:i:d\x00k", "v", b"\xff{not json")
    await client.hset(f"{prefix}:store:i:d\x00list", "v", b"[1, 2]")
    await client.aclose()
    try:
        await _check_damage_detected(store)
    finally:
        await store.destroy()  # type: ignore[attr-defined]
        await store.aclose()


async def test_damaged_postgres_value_is_detected() -> None:
    require_package("hitl_async_postgres", "drivers/postgres")
    require_service("postgres", POSTGRES_URL)
    import asyncpg

    schema = f"s_{uuid.uuid4().hex[:12]}"
    store = connect_store(POSTGRES_URL, schema=schema)
    await store.aput(("d",), "k", {"v": 1})
    await store.aput(("d",), "list", {"v": 2})
    conn = await asyncpg.connect(POSTGRES_URL)
    # PostgreSQL's json type refuses malformed text, so only the shape can be damaged here.
    await conn.execute(f"UPDATE {schema}.store_items SET value = '[1, 2]' WHERE key = 'list'")
    await conn.execute(f"UPDATE {schema}.store_items SET value = '\"text\"' WHERE key = 'k'")
    await conn.close()
    try:
        with pytest.raises(StoreCorruptError, match="not an object"):
            await store.aget(("d",), "k")
        await _check_damage_detected_shape(store)
    finally:
        await store.destroy()  # type: ignore[attr-defined]
        await store.aclose()


async def _check_damage_detected_shape(store: BackendStore) -> None:
    with pytest.raises(StoreCorruptError, match="not an object"):
        await store.aget(("d",), "list")
    with pytest.raises(StoreCorruptError):
        await store.asearch(("d",))
    await store.adelete(("d",), "list")
    await store.adelete(("d",), "k")
    assert await store.asearch(("d",)) == []
