"""The `/store` endpoints of `hitl serve` through `langgraph-sdk`'s `client.store` (async and
sync clients), on SQLite, PostgreSQL and Redis: LangGraph's shapes and status codes, and the
same store the graphs' nodes see (a memory put through the API is recalled by a run; one a node
saved is read through the API)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from apps.servers import Proc
from langgraph_sdk import get_client, get_sync_client

pytestmark = pytest.mark.anyio


def _ns() -> str:
    """A namespace root of its own per test (the server is shared by the module's tests)."""
    return f"t{uuid.uuid4().hex[:10]}"


async def test_put_get_search_list_delete(server: Proc) -> None:
    c = get_client(url=server.url)
    root = _ns()
    await c.store.put_item([root, "docs"], key="a", value={"title": "first", "n": 1})
    await c.store.put_item([root, "docs"], key="b", value={"title": "second", "n": 2})
    await c.store.put_item([root, "notes", "x"], key="c", value={"n": 3}, ttl=60)

    item = await c.store.get_item([root, "docs"], key="a")
    assert set(item) == {"namespace", "key", "value", "created_at", "updated_at"}
    assert (item["namespace"], item["key"], item["value"]) == (
        [root, "docs"],
        "a",
        {"title": "first", "n": 1},
    )
    assert datetime.fromisoformat(item["created_at"]).utcoffset() is not None
    assert await c.store.get_item([root, "docs"], key="missing") is None
    assert (await c.store.get_item([root, "docs"], key="a", refresh_ttl=False))["key"] == "a"

    found = await c.store.search_items([root])
    assert set(found) == {"items"}
    assert sorted(i["key"] for i in found["items"]) == ["a", "b", "c"]
    assert all(i["score"] is None for i in found["items"])
    by_filter = await c.store.search_items([root], filter={"n": {"$gte": 2}})
    assert sorted(i["key"] for i in by_filter["items"]) == ["b", "c"]
    assert [
        i["key"] for i in (await c.store.search_items([root, "docs"], filter={"n": 1}))["items"]
    ] == ["a"]
    first = await c.store.search_items([root, "docs"], limit=1)
    second = await c.store.search_items([root, "docs"], limit=1, offset=1)
    assert sorted([first["items"][0]["key"], second["items"][0]["key"]]) == ["a", "b"]

    listed = await c.store.list_namespaces(prefix=[root])
    assert listed == {"namespaces": [[root, "docs"], [root, "notes", "x"]]}
    assert await c.store.list_namespaces(prefix=[root], max_depth=2) == {
        "namespaces": [[root, "docs"], [root, "notes"]]
    }
    assert await c.store.list_namespaces(prefix=[root], suffix=["x"]) == {
        "namespaces": [[root, "notes", "x"]]
    }
    assert await c.store.list_namespaces(prefix=[root, "*", "x"]) == {
        "namespaces": [[root, "notes", "x"]]
    }
    assert await c.store.list_namespaces(prefix=[root], limit=1, offset=1) == {
        "namespaces": [[root, "notes", "x"]]
    }

    await c.store.put_item([root, "docs"], key="a", value={"title": "changed"})
    assert (await c.store.get_item([root, "docs"], key="a"))["value"] == {"title": "changed"}
    await c.store.delete_item([root, "docs"], key="a")
    await c.store.delete_item([root, "docs"], key="a")  # deleting what is gone is fine
    assert await c.store.get_item([root, "docs"], key="a") is None
    assert [i["key"] for i in (await c.store.search_items([root, "docs"]))["items"]] == ["b"]


async def test_status_codes_match_langgraph(server: Proc) -> None:
    """The answers `langgraph dev` (langgraph-api 0.16.7) gives to the same requests."""
    root = _ns()
    async with httpx.AsyncClient(base_url=str(server.url)) as http:
        put = await http.put("/store/items", json={"namespace": [root], "key": "k", "value": {}})
        assert (put.status_code, put.content) == (204, b"")
        cases: list[tuple[str, str, dict[str, Any], int]] = [
            ("PUT", "/store/items", {"namespace": [], "key": "k", "value": {}}, 400),
            (
                "PUT",
                "/store/items",
                {"namespace": ["langgraph", "x"], "key": "k", "value": {}},
                400,
            ),
            ("PUT", "/store/items", {"namespace": [root, "a.b"], "key": "k", "value": {}}, 422),
            ("PUT", "/store/items", {"namespace": [root, ""], "key": "k", "value": {}}, 422),
            ("PUT", "/store/items", {"namespace": [root], "key": "k", "value": [1]}, 422),
            ("PUT", "/store/items", {"namespace": [root], "key": "k"}, 422),
            ("PUT", "/store/items", {"namespace": [root], "value": {}}, 422),
            ("PUT", "/store/items", {"namespace": root, "key": "k", "value": {}}, 422),
            (
                "PUT",
                "/store/items",
                {"namespace": [root], "key": "k", "value": {}, "ttl": "x"},
                422,
            ),
            ("DELETE", "/store/items", {"namespace": [root]}, 422),
            ("DELETE", "/store/items", {"namespace": [], "key": "k"}, 204),
            ("POST", "/store/items/search", {"namespace_prefix": root}, 422),
            (
                "POST",
                "/store/items/search",
                {"namespace_prefix": [root], "filter": {"n": {"$bogus": 1}}},
                400,
            ),
            ("POST", "/store/namespaces", {"max_depth": "x"}, 422),
        ]
        for method, path, body, status in cases:
            got = await http.request(method, path, json=body)
            assert got.status_code == status, (method, body, got.text)
            if status != 204:
                assert "detail" in got.json(), got.text
        no_key = await http.get("/store/items", params={"namespace": root})
        assert (no_key.status_code, no_key.json()) == (400, {"error": "Key is required"})
        assert (await http.get("/store/items", params={"key": "k"})).status_code == 422
        missing = await http.get("/store/items", params={"namespace": "langgraph.x", "key": "k"})
        assert (missing.status_code, missing.json()) == (200, None)
        bad_json = await http.put("/store/items", content=b"xx")
        assert bad_json.status_code == 422
        assert "/store/items/search" in (await http.get("/openapi.json")).json()["paths"]


async def test_nodes_see_the_same_store(server: Proc) -> None:
    """A memory put through the API is recalled by the graph; one the graph saved (sync node,
    `get_store()`) is read, searched and deleted through the API."""
    c = get_client(url=server.url)
    user = _ns()
    await c.store.put_item(["memories", user], key="from-api", value={"text": "likes tea"})
    out = await c.runs.wait(None, "memory", input={"user": user, "note": "lives in Oslo"})
    assert out["recalled"] == ["likes tea", "lives in Oslo"]
    saved = await c.store.get_item(["memories", user], key="note-lives in Oslo")
    assert saved["value"] == {"text": "lives in Oslo"}
    assert await c.store.list_namespaces(prefix=["memories", user]) == {
        "namespaces": [["memories", user]]
    }
    await c.store.delete_item(["memories", user], key="from-api")
    out = await c.runs.wait(None, "memory", input={"user": user})
    assert out["recalled"] == ["lives in Oslo"]


def test_sync_client_store(server: Proc) -> None:
    c = get_sync_client(url=server.url)
    root = _ns()
    c.store.put_item([root, "s"], key="one", value={"v": 1})
    c.store.put_item([root, "s"], key="two", value={"v": 2}, index=False, ttl=None)
    assert c.store.get_item([root, "s"], key="one")["value"] == {"v": 1}
    found = c.store.search_items([root], filter={"v": {"$gt": 1}})
    assert [(i["key"], i["value"]) for i in found["items"]] == [("two", {"v": 2})]
    assert c.store.list_namespaces(prefix=[root]) == {"namespaces": [[root, "s"]]}
    c.store.delete_item([root, "s"], key="one")
    assert c.store.get_item([root, "s"], key="one") is None
    with pytest.raises(httpx.HTTPStatusError) as refused:
        c.store.put_item([], key="k", value={})
    assert refused.value.response.status_code == 400
