"""Auth and safety: a LangGraph `Auth` object from `auth.path` (authenticate + owner filters:
users see only their own threads and runs), `--auth-token`, CORS from `http.cors`, and the
request size limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apps.servers import CONFIG, Proc, serving, store_url
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

pytestmark = pytest.mark.anyio

AUTH_CONFIG = CONFIG.with_name("langgraph_auth.json")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    tmp = tmp_path_factory.mktemp("auth")
    with serving(store_url("sqlite", tmp), tmp, config=AUTH_CONFIG) as proc:
        yield proc


def user(server: Proc, token: str | None) -> Any:
    assert server.url is not None
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return get_client(url=server.url, headers=headers)


async def test_users_see_only_their_threads(auth_server: Proc) -> None:
    alice, bob = user(auth_server, "token-alice"), user(auth_server, "token-bob")
    thread = await alice.threads.create(metadata={"topic": "refund"})
    tid = thread["thread_id"]
    assert thread["metadata"] == {"topic": "refund", "owner": "alice"}
    out = await alice.runs.wait(tid, "agent", input={"amount": 4})
    assert "__interrupt__" in out
    assert (await alice.threads.get(tid))["metadata"]["owner"] == "alice"

    with pytest.raises(NotFoundError):
        await bob.threads.get(tid)
    with pytest.raises(NotFoundError):
        await bob.runs.create(tid, "agent", command={"resume": "yes"})
    with pytest.raises(NotFoundError):
        await bob.threads.get_state(tid)
    with pytest.raises(NotFoundError):
        await bob.threads.delete(tid)
    assert await bob.threads.search(limit=100) == []
    mine = await alice.threads.search(limit=100)
    assert [t["thread_id"] for t in mine] == [tid]
    stateless = await bob.runs.wait(None, "agent", input={"amount": 1}, on_completion="keep")
    assert "__interrupt__" in stateless
    assert [t["metadata"]["owner"] for t in await bob.threads.search(limit=100)] == ["bob"]


async def test_store_handlers_scope_memories_per_user(auth_server: Proc) -> None:
    """`@auth.on.store` rewrites every namespace to start with the caller's identity: users
    read, search and list only their own memories."""
    alice, bob = user(auth_server, "token-alice"), user(auth_server, "token-bob")
    await alice.store.put_item(["prefs"], key="drink", value={"tea": True})
    await bob.store.put_item(["prefs"], key="drink", value={"tea": False})
    assert (await alice.store.get_item(["prefs"], key="drink"))["value"] == {"tea": True}
    assert (await bob.store.get_item(["prefs"], key="drink"))["namespace"] == ["bob", "prefs"]
    found = await alice.store.search_items(["prefs"])
    assert [(i["namespace"], i["value"]) for i in found["items"]] == [
        (["alice", "prefs"], {"tea": True})
    ]
    assert await bob.store.list_namespaces() == {"namespaces": [["bob", "prefs"]]}
    await bob.store.delete_item(["prefs"], key="drink")
    assert await bob.store.get_item(["prefs"], key="drink") is None
    assert (await alice.store.get_item(["prefs"], key="drink"))["value"] == {"tea": True}


async def test_unauthenticated_calls_are_refused(auth_server: Proc) -> None:
    assert auth_server.url is not None
    async with httpx.AsyncClient(base_url=auth_server.url) as http:
        assert (await http.get("/ok")).status_code == 200
        refused = await http.post("/threads", json={})
        assert refused.status_code == 401 and refused.json()["detail"] == "unknown token"
        wrong = await http.post("/threads/search", json={}, headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
        preflight = await http.options(
            "/threads",
            headers={"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "http://ui.example"


async def test_auth_token_and_body_limit(tmp_path: Path) -> None:
    url = store_url("sqlite", tmp_path)
    with serving(url, tmp_path, extra=["--auth-token", "s3cret", "--max-body", "2048"]) as server:
        assert server.url is not None
        async with httpx.AsyncClient(base_url=server.url) as http:
            assert (await http.post("/threads", json={})).status_code == 401
            ok = await http.post("/threads", json={}, headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200
            big = await http.post(
                "/threads",
                json={"metadata": {"blob": "x" * 4096}},
                headers={"Authorization": "Bearer s3cret"},
            )
            assert big.status_code == 413
            assert (
                await http.get(
                    "/threads/" + ok.json()["thread_id"], headers={"Authorization": "Bearer s3cret"}
                )
            ).status_code == 200
