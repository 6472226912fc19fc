"""The HTTP server probed as an attacker would, on every store `hitl serve` runs on: bodies
with NaN, Infinity or NUL characters, ids no store can hold, config of the wrong shape, negative
or huge limits, a checkpoint the thread does not have, NUL in the path, and concurrent resumes
of one thread. Each refused request is a 4xx that stores nothing and leaves the server up.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
from apps.servers import Proc, drop_store, serving, store_url

pytestmark = pytest.mark.anyio

MISSING = "1ef00000-0000-6000-8000-000000000000"


@pytest.fixture(scope="module", params=["sqlite", "postgres", "redis"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Proc]:
    tmp = tmp_path_factory.mktemp(f"probe-serve-{request.param}")
    url = store_url(request.param, tmp)
    try:
        with serving(url, tmp) as proc:
            yield proc
    finally:
        drop_store(url)


async def paused_over_http(c: httpx.AsyncClient) -> tuple[str, str]:
    tid = (await c.post("/threads", json={})).json()["thread_id"]
    await c.post(
        f"/threads/{tid}/runs/wait", json={"assistant_id": "agent", "input": {"amount": 5}}
    )
    state = (await c.get(f"/threads/{tid}/state")).json()
    return tid, state["tasks"][0]["interrupts"][0]["id"]


JSON = {"content-type": "application/json"}

# name -> (method, path, raw JSON body) for a thread `{t}`; each is a 422 and stores nothing
REFUSED_BODIES = {
    "NaN in thread metadata": ("POST", "/threads", b'{"metadata": {"a": NaN}}'),
    "Infinity in a run's input": (
        "POST",
        "/threads/{t}/runs/wait",
        b'{"assistant_id": "agent", "input": {"amount": Infinity}}',
    ),
    "NaN in a store value": (
        "PUT",
        "/store/items",
        b'{"namespace": ["probe"], "key": "k", "value": {"x": NaN}}',
    ),
    "NUL in thread metadata": ("POST", "/threads", b'{"metadata": {"a": "x\\u0000y"}}'),
    "NUL in a metadata key": ("POST", "/threads", b'{"metadata": {"a\\u0000": 1}}'),
    "a thread id with NUL": ("POST", "/threads", b'{"thread_id": "a\\u0000b"}'),
    "a thread id of 5000 bytes": (
        "POST",
        "/threads",
        json.dumps({"thread_id": "x" * 5000}).encode(),
    ),
    "configurable a list": (
        "POST",
        "/threads/{t}/runs/wait",
        b'{"assistant_id": "agent", "command": {"resume": "yes"}, "config": {"configurable": [1]}}',
    ),
    "a negative runs limit": ("GET", "/threads/{t}/runs?limit=-1", b""),
    "a negative search offset": ("POST", "/threads/search", b'{"offset": -1}'),
    "a search limit of 2**70": ("POST", "/threads/search", b'{"limit": 1180591620717411303424}'),
    "a checkpoint the thread does not have": ("GET", f"/threads/{{t}}/state/{MISSING}", b""),
}


@pytest.mark.parametrize("probe", list(REFUSED_BODIES))
async def test_hostile_requests_are_a_422_and_store_nothing(server: Proc, probe: str) -> None:
    method, path, body = REFUSED_BODIES[probe]
    async with httpx.AsyncClient(base_url=server.url or "", timeout=60) as c:
        tid, _ = await paused_over_http(c)
        before = (await c.get(f"/threads/{tid}/state")).json()
        count = (await c.post("/threads/count", json={})).json()
        r = await c.request(method, path.format(t=tid), content=body or None, headers=JSON)
        assert r.status_code == 422, r.text
        assert (await c.get(f"/threads/{tid}/state")).json() == before
        assert (await c.post("/threads/count", json={})).json() == count
        assert (await c.get("/ok")).status_code == 200


async def test_ids_with_nul_in_the_path_are_a_404(server: Proc) -> None:
    async with httpx.AsyncClient(base_url=server.url or "", timeout=60) as c:
        tid, _ = await paused_over_http(c)
        for path in ("/threads/a%00b/state", f"/threads/{tid}/state/a%00b", "/threads/a%00/runs"):
            r = await c.get(path)
            assert r.status_code == 404, (path, r.text)


async def test_concurrent_resumes_of_one_thread_one_wins_the_others_are_409(server: Proc) -> None:
    async with httpx.AsyncClient(base_url=server.url or "", timeout=60) as c:
        tid, iid = await paused_over_http(c)
        body = {"assistant_id": "agent", "command": {"resume": {iid: "yes"}}}
        answers = await asyncio.gather(
            *[c.post(f"/threads/{tid}/runs/wait", json=body) for _ in range(6)]
        )
        assert sorted(r.status_code for r in answers) == [200] + [409] * 5
        state = (await c.get(f"/threads/{tid}/state")).json()
        assert state["next"] == [] and state["values"]["decision"] == "approved"
        assert state["values"]["log"] == ["prepare", "notify"]
        assert [r["status"] for r in (await c.get(f"/threads/{tid}/runs")).json()] == [
            "success"
        ] * 2


def test_a_graph_output_with_nan_or_infinity_is_sent_as_null() -> None:
    """A graph's state may hold NaN or an infinity (msgpack stores them exactly); JSON has no
    such number, so the wire shows null, as LangGraph's server does (runs/wait answered 500)."""
    from hitl_async.server.encoding import dumps, jsonable

    value = {"a": float("nan"), "b": [float("inf"), -float("inf")], "c": 1.5}
    assert jsonable(value) == {"a": None, "b": [None, None], "c": 1.5}
    assert json.loads(dumps(value)) == {"a": None, "b": [None, None], "c": 1.5}
    assert json.dumps(jsonable(value), allow_nan=False)
