"""Store conformance: LangGraph's store tests (libs/checkpoint, checkpoint-postgres and
checkpoint-sqlite), restated and run on every driver through the `store` fixture."""

from __future__ import annotations

import anyio
import pytest

from hitl_async.store import (
    BackendStore,
    GetOp,
    Item,
    ListNamespacesOp,
    PutOp,
    SearchItem,
    SearchOp,
)

pytestmark = pytest.mark.anyio


async def test_batch_results_in_operation_order(store: BackendStore) -> None:
    await store.aput(("test", "foo"), "key1", {"data": "value1"})
    await store.aput(("test", "bar"), "key2", {"data": "value2"})
    results = await store.abatch(
        [
            GetOp(("test", "foo"), "key1"),
            PutOp(("test", "bar"), "key2", {"data": "value2"}),
            SearchOp(("test",), {"data": "value1"}, 10, 0),
            ListNamespacesOp(None, None, 10, 0),
            GetOp(("test",), "key3"),
        ]
    )
    assert len(results) == 5
    assert isinstance(results[0], Item) and results[0].value == {"data": "value1"}
    assert results[1] is None
    assert [i.key for i in results[2]] == ["key1"]  # type: ignore[union-attr]
    assert results[3] == [("test", "bar"), ("test", "foo")]
    assert results[4] is None

    reordered = await store.abatch(
        [
            SearchOp(("test",), None, 5, 0),
            GetOp(("test", "bar"), "key2"),
            ListNamespacesOp(None, None, 5, 0),
            PutOp(("test",), "key3", {"data": "value3"}),
            GetOp(("test", "foo"), "key1"),
        ]
    )
    assert len(reordered[0]) == 2  # type: ignore[arg-type]
    assert reordered[1].value == {"data": "value2"}  # type: ignore[union-attr]
    assert reordered[3] is None
    assert reordered[4].key == "key1"  # type: ignore[union-attr]
    assert (await store.aget(("test",), "key3")).value == {"data": "value3"}  # type: ignore[union-attr]


async def test_reads_in_a_batch_see_the_state_before_its_writes(store: BackendStore) -> None:
    await store.aput(("n",), "k", {"v": 1})
    got, _, after = await store.abatch(
        [GetOp(("n",), "k"), PutOp(("n",), "k", {"v": 2}), GetOp(("n",), "k")]
    )
    assert got.value == {"v": 1} and after.value == {"v": 1}  # type: ignore[union-attr]
    assert (await store.aget(("n",), "k")).value == {"v": 2}  # type: ignore[union-attr]


async def test_searches_in_a_batch_see_the_state_before_its_writes(store: BackendStore) -> None:
    await store.aput(("n", "a"), "old", {"kind": "x"})
    found, _, got, _ = await store.abatch(
        [
            SearchOp(("n",), filter={"kind": "x"}),
            PutOp(("n", "a"), "new", {"kind": "x"}),
            GetOp(("n", "a"), "new"),
            PutOp(("n", "a"), "old", {"kind": "y"}),
        ]
    )
    assert [i.key for i in found] == ["old"] and found[0].value == {"kind": "x"}  # type: ignore[union-attr]
    assert got is None
    after = await store.asearch(("n",), filter={"kind": "x"})
    assert [i.key for i in after] == ["new"]


async def test_batch_puts_and_deletes(store: BackendStore) -> None:
    results = await store.abatch(
        [
            PutOp(("test",), "key1", {"data": "value1"}),
            PutOp(("test",), "key2", {"data": "value2"}),
            PutOp(("test",), "key3", None),
        ]
    )
    assert results == [None, None, None]
    assert (await store.aget(("test",), "key1")).value == {"data": "value1"}  # type: ignore[union-attr]
    assert (await store.aget(("test",), "key3")) is None
    # The last put of an item in a batch wins; a delete after a put deletes.
    await store.abatch([PutOp(("test",), "key1", {"v": 1}), PutOp(("test",), "key1", {"v": 2})])
    assert (await store.aget(("test",), "key1")).value == {"v": 2}  # type: ignore[union-attr]
    await store.abatch([PutOp(("test",), "key2", {"v": 3}), PutOp(("test",), "key2", None)])
    assert await store.aget(("test",), "key2") is None


async def test_basic_operations(store: BackendStore) -> None:
    ns = ("test", "documents")
    await store.aput(ns, "doc1", {"title": "Test Document", "content": "Hello, World!"})
    item = await store.aget(ns, "doc1")
    assert item is not None
    assert (item.namespace, item.key) == (ns, "doc1")
    assert item.value == {"title": "Test Document", "content": "Hello, World!"}
    assert item.created_at.tzinfo is not None and item.created_at == item.updated_at

    await store.aput(ns, "doc1", {"title": "Updated"})
    updated = await store.aget(ns, "doc1")
    assert updated is not None and updated.value == {"title": "Updated"}
    assert updated.updated_at > item.updated_at
    assert updated.created_at == item.created_at  # an update keeps the creation time

    assert await store.aget(("test", "other_documents"), "doc1") is None
    await store.adelete(ns, "doc1")
    assert await store.aget(ns, "doc1") is None
    await store.adelete(ns, "doc1")  # deleting what is not there is not an error


async def test_sync_api(store: BackendStore) -> None:
    def work() -> tuple[object, ...]:
        store.put(("sync", "a"), "k", {"n": 1})
        store.put(("sync", "b"), "k", {"n": 2})
        got = store.get(("sync", "a"), "k")
        found = [i.key for i in store.search(("sync",), filter={"n": 2})]
        names = store.list_namespaces(prefix=("sync",))
        store.delete(("sync", "a"), "k")
        return got.value if got else None, found, names, store.get(("sync", "a"), "k")

    value, found, names, gone = await anyio.to_thread.run_sync(work)
    assert value == {"n": 1} and found == ["k"] and gone is None
    assert names == [("sync", "a"), ("sync", "b")]


async def test_items_handed_out_are_copies(store: BackendStore) -> None:
    value = {"tags": ["a"], "meta": {"n": 1}}
    await store.aput(("c",), "k", value)
    value["tags"].append("b")  # the caller's dict is not the stored one
    item = await store.aget(("c",), "k")
    assert item is not None and item.value == {"tags": ["a"], "meta": {"n": 1}}
    item.value["meta"]["n"] = 99
    again = await store.aget(("c",), "k")
    assert again is not None and again.value["meta"] == {"n": 1}
    found = await store.asearch(("c",))
    found[0].value["tags"].clear()
    assert (await store.aget(("c",), "k")).value["tags"] == ["a"]  # type: ignore[union-attr]


async def test_item_dict_and_equality(store: BackendStore) -> None:
    await store.aput(("d",), "k", {"x": 1})
    item = await store.aget(("d",), "k")
    assert item is not None
    d = item.dict()
    assert d["namespace"] == ["d"] and d["key"] == "k" and d["value"] == {"x": 1}
    assert Item(**{**d, "namespace": tuple(d["namespace"])}) == item
    assert hash(item) == hash((("d",), "k"))
    found = (await store.asearch(("d",)))[0]
    assert isinstance(found, SearchItem) and found.score is None and found.dict()["score"] is None


@pytest.mark.parametrize(
    "value",
    [
        {"float": 1e20, "small": 1e-7, "neg": -0.5, "third": 1 / 3, "whole": 2.0},
        {"big": 2**63 - 1, "low": -(2**63), "zero": 0},
        {"text": "这是中文 — émoji 🎉", "quote": 'O\'Brien "x"', "nl": "a\nb\tc\\"},
        {"nested": {"a": [1, {"b": [True, False, None]}], "empty": {}, "list": []}},
        {"": "empty key", "$eq": "dollar key", "a.b": "dotted key"},
    ],
)
async def test_values_round_trip_exactly(store: BackendStore, value: dict[str, object]) -> None:
    await store.aput(("rt",), "k", value)
    item = await store.aget(("rt",), "k")
    assert item is not None and item.value == value
    for k, v in value.items():
        assert type(item.value[k]) is type(v)  # a float stays a float, an int an int
    assert (await store.asearch(("rt",)))[0].value == value


async def test_tuples_are_stored_as_lists(store: BackendStore) -> None:
    await store.aput(("rt",), "k", {"pair": (1, "a"), "deep": [(2,)]})
    assert (await store.aget(("rt",), "k")).value == {"pair": [1, "a"], "deep": [[2]]}  # type: ignore[union-attr]


async def test_concurrent_puts_all_land(store: BackendStore) -> None:
    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(store.aput, ("many", f"u{i % 4}"), f"k{i}", {"i": i})
    found = await store.asearch(("many",), limit=100)
    assert sorted(item.value["i"] for item in found) == list(range(40))
    assert await store.alist_namespaces(prefix=("many",)) == [("many", f"u{i}") for i in range(4)]
