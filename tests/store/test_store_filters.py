"""Search filters on every driver: the same answers whether SQL or Python evaluates them."""

from __future__ import annotations

from typing import Any

import pytest

from hitl_async import InvalidFilterError
from hitl_async.store import BackendStore

pytestmark = pytest.mark.anyio

DOCS: dict[str, dict[str, Any]] = {
    "int": {"n": 10, "s": "b", "flag": True, "tags": ["x", "y"], "meta": {"a": 1, "b": [2]}},
    "float": {"n": 2.5, "s": "a", "flag": False, "tags": ["y"], "meta": {"b": [2], "a": 1}},
    "neg": {"n": -3, "s": "ab", "flag": None, "tags": [], "meta": {"a": 1}},
    "str": {"n": "10", "s": "B", "flag": 1, "tags": ["x", "y", "z"]},
    "null": {"n": None, "s": None},
    "none": {},
    "one": {"n": 1, "flag": 1.0},
    "onef": {"n": 1.0, "s": "é"},
    "escaped": {"e": 'q"b\\/ \n\t\x01 \u2028 😀'},
    "shaped": {"e": ["x"], "o": {"a": 1}},
}


@pytest.fixture
async def docs(store: BackendStore) -> BackendStore:
    for key, value in DOCS.items():
        await store.aput(("docs",), key, value)
    return store


async def _keys(store: BackendStore, filter: dict[str, Any]) -> set[str]:
    return {item.key for item in await store.asearch(("docs",), filter=filter, limit=100)}


CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"n": 10}, {"int"}),  # the string "10" is not the number 10
    ({"n": 10.0}, {"int"}),  # 10 == 10.0
    ({"n": 1}, {"one", "onef"}),
    ({"flag": True}, {"int"}),  # true is not 1
    ({"flag": 1}, {"str", "one"}),  # 1 is not true, 1 == 1.0
    ({"flag": None}, {"neg"}),  # null, not missing
    ({"n": None}, {"null"}),
    ({"s": "b"}, {"int"}),  # case-sensitive
    ({"s": "é"}, {"onef"}),
    ({"e": 'q"b\\/ \n\t\x01 \u2028 😀'}, {"escaped"}),  # escapes compare as the characters
    ({"e": 'q"b\\/ \n\t\x01 \u2028'}, set()),
    ({"e": '["x"]'}, set()),  # a string is not the list it spells
    ({"o": '{"a":1}'}, set()),
    ({"e": ["x"]}, {"shaped"}),
    ({"e": {"$ne": 'q"b\\/ \n\t\x01 \u2028 😀'}}, set(DOCS) - {"escaped"}),
    ({"n": {"$eq": "10"}}, {"str"}),
    ({"n": {"$ne": 10}}, set(DOCS) - {"int"}),  # $ne includes items without the field
    ({"s": {"$ne": None}}, set(DOCS) - {"null"}),
    ({"n": {"$gt": 2.5}}, {"int"}),  # numbers only: "10" is not compared
    ({"n": {"$gte": 2.5}}, {"int", "float"}),
    ({"n": {"$lt": 1}}, {"neg"}),
    ({"n": {"$lte": 1}}, {"neg", "one", "onef"}),
    ({"n": {"$gt": 0, "$lt": 5}}, {"float", "one", "onef"}),
    ({"n": {"$gt": float("-inf")}}, {"int", "float", "neg", "one", "onef"}),
    ({"n": {"$lt": float("inf")}}, {"int", "float", "neg", "one", "onef"}),
    ({"n": {"$lt": 10**18}}, {"int", "float", "neg", "one", "onef"}),
    ({"n": {"$eq": float("nan")}}, set()),
    ({"n": {"$gt": float("nan")}}, set()),
    ({"n": {"$ne": float("nan")}}, set(DOCS)),
    ({"s": {"$gt": "a"}}, {"int", "neg", "onef"}),  # strings by code point: "B" < "a"
    ({"s": {"$lte": "B"}}, {"str"}),
    ({"s": {"$gte": "a", "$lt": "b"}}, {"float", "neg"}),
    ({"tags": ["x", "y"]}, {"int"}),  # lists: exact, in order
    ({"tags": ["y", "x"]}, set()),
    ({"tags": []}, {"neg"}),
    ({"meta": {"a": 1, "b": [2]}}, {"int", "float"}),  # dicts: exact, any key order
    ({"meta": {"a": 1}}, {"neg"}),
    ({"meta": {"$ne": {"a": 1}}}, set(DOCS) - {"neg"}),
    ({"n": 10, "s": "b"}, {"int"}),
    ({"n": 10, "s": "a"}, set()),
    ({"missing": {"$ne": 1}}, set(DOCS)),
    ({"n": {"$ne": "10"}}, set(DOCS) - {"str"}),
    ({"missing": 1}, set()),
    ({}, set(DOCS)),
]


@pytest.mark.parametrize(("filter", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
async def test_filter(docs: BackendStore, filter: dict[str, Any], expected: set[str]) -> None:
    assert await _keys(docs, filter) == expected


async def test_filter_pages_after_filtering(docs: BackendStore) -> None:
    everything = [i.key for i in await docs.asearch(("docs",), filter={"n": {"$ne": "x"}})]
    for filt in ({"n": {"$ne": "x"}}, {"meta": {"$ne": []}}):  # SQL and Python paths
        page1 = await docs.asearch(("docs",), filter=filt, limit=3)
        page2 = await docs.asearch(("docs",), filter=filt, limit=3, offset=3)
        assert [i.key for i in page1 + page2] == everything[:6]


async def test_injection_shaped_filters_are_inert(store: BackendStore) -> None:
    await store.aput(("docs",), "public", {"access": "public", "data": "public info"})
    await store.aput(("docs",), "private", {"access": "private", "password": "123"})
    await store.aput(("docs",), "quote", {"title": "O'Brien's \"Document\"", "access-level": 1})
    await store.aput(("docs",), "digits", {"123abc": "ok", 'we"ird': "q", "a.b": "dot"})
    evil = "access') = 'public' OR '1'='1' OR json_extract(value, '$."
    assert await _keys(store, {evil: "dummy"}) == set()
    for value in (
        "public' OR '1'='1",
        "public'; --",
        "public' UNION SELECT * FROM store --",
        "public\x00' OR '1'='1",
        "''''",
        "public' OR 'א'='א",
    ):
        assert await _keys(store, {"access": value}) == set()
    assert await _keys(store, {"title": "O'Brien's \"Document\""}) == {"quote"}
    assert await _keys(store, {"access-level": 1}) == {"quote"}
    assert await _keys(store, {"123abc": "ok"}) == {"digits"}
    assert await _keys(store, {'we"ird': "q"}) == {"digits"}
    assert await _keys(store, {"a.b": "dot"}) == {"digits"}  # a field name, not a path
    assert await _keys(store, {"$": "x"}) == set()


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ({"n": {"$in": [1, 2]}}, "unsupported operator '\\$in'"),
        ({"n": {"$gt": 1, "plain": 2}}, "unsupported operator 'plain'"),
        ({"n": {"$gt": None}}, "compares with a number or a string"),
        ({"n": {"$lt": [1]}}, "compares with a number or a string"),
        ({"n": {"$gte": True}}, "compares with a number or a string"),
        ({"n": object()}, "is not a JSON value"),
        ({1: "x"}, "field names are strings"),
        ("status=active", "a search filter is a dict"),
    ],
)
async def test_bad_filters_are_clear_errors(store: BackendStore, filter: Any, message: str) -> None:
    await store.aput(("docs",), "k", {"n": 1})
    with pytest.raises(InvalidFilterError, match=message):
        await store.asearch(("docs",), filter=filter)
    with pytest.raises(ValueError):  # LangGraph's callers catch ValueError
        store.search(("docs",), filter=filter)
