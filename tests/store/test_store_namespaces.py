"""Namespaces on every driver: listing (prefix, suffix, wildcards, depth, pages, order),
search scopes at label boundaries, and labels that are metacharacters somewhere."""

from __future__ import annotations

import pytest

from hitl_async.store import BackendStore

pytestmark = pytest.mark.anyio

TREE = [
    ("a", "b", "c"),
    ("a", "b", "d", "e"),
    ("a", "b", "d", "i"),
    ("a", "b", "f"),
    ("a", "c", "f"),
    ("b", "a", "f"),
    ("users", "123"),
    ("users", "456", "settings"),
    ("admin", "users", "789"),
]


async def _fill(store: BackendStore, namespaces: list[tuple[str, ...]]) -> None:
    for i, ns in enumerate(namespaces):
        await store.aput(ns, f"id_{i}", {"data": f"value_{i:02d}"})


async def test_list_namespaces_matching(store: BackendStore) -> None:
    await _fill(store, TREE)
    ls = store.alist_namespaces
    assert await ls(prefix=("a", "b")) == [
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
    ]
    assert await ls(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert await ls(prefix=("a",), suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert await ls(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "b", "f"),
    ]
    assert await ls(prefix=("a", "b"), limit=2) == [("a", "b", "c"), ("a", "b", "d", "e")]
    assert await ls(prefix=("a", "b"), offset=2) == [("a", "b", "d", "i"), ("a", "b", "f")]
    assert await ls(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert await ls(suffix=("*", "f")) == [("a", "b", "f"), ("a", "c", "f"), ("b", "a", "f")]
    assert await ls(prefix=("nonexistent",)) == []
    assert await ls(prefix=("users", "123")) == [("users", "123")]
    assert await ls(prefix=("*", "users"), suffix=("*", "settings")) == []
    assert await ls(max_depth=2) == [
        ("a", "b"),
        ("a", "c"),
        ("admin", "users"),
        ("b", "a"),
        ("users", "123"),
        ("users", "456"),
    ]
    assert await ls() == sorted(TREE)
    assert store.list_namespaces(prefix=("users", "*")) == [
        ("users", "123"),
        ("users", "456", "settings"),
    ]


async def test_list_namespaces_pages_and_empty_store(store: BackendStore) -> None:
    assert await store.alist_namespaces() == []
    await _fill(store, [("namespace", f"sub_{i:02d}") for i in range(20)])
    for offset in (0, 5, 15):
        assert await store.alist_namespaces(prefix=("namespace",), limit=5, offset=offset) == [
            ("namespace", f"sub_{i:02d}") for i in range(offset, offset + 5)
        ]


async def test_listing_orders_label_by_label(store: BackendStore) -> None:
    # By text, "a-b" < "a.x" ('-' sorts before '.'); by label, ("a", "x") < ("a-b",).
    await _fill(store, [("a-b",), ("a", "x"), ("a",), ("A",), ("a b",)])
    assert await store.alist_namespaces() == [("A",), ("a",), ("a", "x"), ("a b",), ("a-b",)]


async def test_listing_drops_emptied_namespaces(store: BackendStore) -> None:
    await store.aput(("keep",), "k", {})
    await store.aput(("gone",), "k", {})
    await store.aget(("never", "written"), "k")  # a read creates nothing
    await store.adelete(("gone",), "k")
    assert await store.alist_namespaces() == [("keep",)]


async def test_listing_segment_boundaries(store: BackendStore) -> None:
    await _fill(
        store,
        [
            ("foo",),
            ("foo", "child"),
            ("foobar",),
            ("foobar", "baz"),
            ("uid", "users", "alice"),
            ("uid", "users", "malice"),
            ("uid", "a", "b", "alice"),
            ("users", "alice\n"),
            ("users", "alice"),
        ],
    )
    assert await store.alist_namespaces(prefix=("foo",)) == [("foo",), ("foo", "child")]
    assert await store.alist_namespaces(suffix=("alice",)) == [
        ("uid", "a", "b", "alice"),
        ("uid", "users", "alice"),
        ("users", "alice"),
    ]
    assert await store.alist_namespaces(prefix=("uid", "*", "alice")) == [("uid", "users", "alice")]
    assert await store.alist_namespaces(prefix=("users", "alice")) == [("users", "alice")]


async def _scope(store: BackendStore, prefix: tuple[str, ...]) -> set[tuple[str, ...]]:
    return {item.namespace for item in await store.asearch(prefix, limit=100)}


async def test_search_scope_stops_at_label_boundaries(store: BackendStore) -> None:
    await _fill(
        store,
        [
            ("foo",),
            ("foo", "child"),
            ("foo", "child", "deep"),
            ("foobar",),
            ("foobar", "baz"),
            ("foo2",),
        ],
    )
    assert await _scope(store, ("foo",)) == {("foo",), ("foo", "child"), ("foo", "child", "deep")}
    assert await _scope(store, ("foobar",)) == {("foobar",), ("foobar", "baz")}
    assert await _scope(store, ("foo", "child")) == {("foo", "child"), ("foo", "child", "deep")}
    assert await _scope(store, ("foo2",)) == {("foo2",)}
    assert await _scope(store, ("fo",)) == set()
    assert len(await _scope(store, ())) == 6  # the empty prefix is everything


async def test_search_scope_follows_namespaces_emptied_and_refilled(store: BackendStore) -> None:
    await _fill(store, [("p",), ("p", "c", "d"), ("p", "c")])
    await store.adelete(("p", "c", "d"), "id_1")
    assert await _scope(store, ("p",)) == {("p",), ("p", "c")}
    await store.adelete(("p", "c"), "id_2")
    assert await _scope(store, ("p",)) == {("p",)}
    assert await _scope(store, ("p", "c")) == set()
    await store.aput(("p", "c", "d"), "again", {"x": 1})
    assert await _scope(store, ("p",)) == {("p",), ("p", "c", "d")}
    assert await _scope(store, ("p", "c")) == {("p", "c", "d")}
    await store.adelete(("p",), "id_0")
    assert await _scope(store, ("p",)) == {("p", "c", "d")}


@pytest.mark.parametrize(
    "labels",
    [
        ["user_1", "userX1"],  # LIKE's _
        ["a%b", "axxb"],  # LIKE's %
        ["a*b", "axb"],  # GLOB's and Redis's *
        ["a?b", "acb"],  # ? wildcards
        ["a[b]c", "abc"],  # [] classes
        ["a\\b", "ab"],  # escapes
        ["Case", "case"],  # case sensitivity
        ["'; DROP TABLE store_items; --", "x"],  # SQL
        ["a/b", "a0b"],  # the range bounds' neighbours
    ],
)
async def test_metacharacter_labels_are_literal(store: BackendStore, labels: list[str]) -> None:
    special, plain = labels
    await _fill(store, [(special,), (special, "child"), (plain,)])
    assert await _scope(store, (special,)) == {(special,), (special, "child")}
    assert await _scope(store, (plain,)) == {(plain,)}
    assert await store.alist_namespaces(prefix=(special,)) == [(special,), (special, "child")]
    assert await store.alist_namespaces(suffix=(special,)) == [(special,)]
    item = await store.aget((special,), "id_0")
    assert item is not None and item.namespace == (special,)


async def test_search_order_and_pages(store: BackendStore) -> None:
    for i in range(5):
        await store.aput(("p", f"n{i % 2}"), f"k{i}", {"i": i})
    await store.aput(("p", "n1"), "k1", {"i": 1, "again": True}, None)  # moves to the front
    keys = [item.key for item in await store.asearch(("p",))]
    assert keys == ["k1", "k4", "k3", "k2", "k0"]  # most recently updated first
    assert [i.key for i in await store.asearch(("p",), limit=2)] == ["k1", "k4"]
    assert [i.key for i in await store.asearch(("p",), limit=2, offset=2)] == ["k3", "k2"]
    assert [i.key for i in await store.asearch(("p",), offset=4)] == ["k0"]
    assert await store.asearch(("p",), limit=0) == []
    assert await store.asearch(("p",), offset=10) == []
