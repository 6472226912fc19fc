"""Two `hitl serve --no-worker` API processes and two `hitl worker --config` processes sharing
PostgreSQL or Redis: a run created through one API process is executed by a worker and streamed
through the other; a client that drops mid-stream and reconnects elsewhere misses nothing; of 8
clients resuming one interrupt at once, exactly one succeeds and seven get 409."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from apps.servers import Proc, drop_store, start_server, start_worker, store_url
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["postgres", "redis"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Proc]]:
    """[api_a, api_b, worker_1, worker_2] on a fresh store; all stopped afterwards."""
    url = store_url(request.param, tmp_path)
    procs: list[Proc] = []
    try:
        for name in ("a", "b"):
            procs.append(start_server(url, tmp_path / f"api-{name}.log", extra=["--no-worker"]))
        for name in ("1", "2"):
            procs.append(start_worker(url, tmp_path / f"worker-{name}.log", concurrency=4))
        yield procs
    finally:
        for proc in procs:
            proc.stop()
        drop_store(url)


async def _first_events(url: str, tid: str, run_id: str, count: int) -> list[tuple[str, str, Any]]:
    """Read `count` events of the run's stream through `url`, then drop the connection."""
    seen: list[tuple[str, str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as http,
        http.stream("GET", f"/threads/{tid}/runs/{run_id}/stream") as res,
    ):
        assert res.status_code == 200
        event = ident = ""
        data: Any = None
        async for line in res.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("id: "):
                ident = line[4:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and event:
                seen.append((event, ident, data))
                event = ""
                if len(seen) == count:
                    break
    return seen


async def test_two_api_processes_two_workers(cluster: list[Proc]) -> None:
    api_a, api_b, worker_1, worker_2 = cluster
    assert api_a.url is not None and api_b.url is not None
    a, b = get_client(url=api_a.url), get_client(url=api_b.url)

    # Created through A, executed by a worker (neither API process executes runs).
    tid = (await a.threads.create())["thread_id"]
    run = await a.runs.create(tid, "slow", input={"steps": 4}, stream_mode="updates")
    first = await _first_events(api_b.url, tid, run["run_id"], 3)  # metadata + 2 updates
    assert [e for e, _, _ in first] == ["metadata", "updates", "updates"]
    rest = [p async for p in a.runs.join_stream(tid, run["run_id"], last_event_id=first[-1][1])]
    steps = [d["tick"]["steps"] for e, _, d in first if e == "updates"]
    steps += [p.data["tick"]["steps"] for p in rest if p.event == "updates"]
    assert steps == [5, 6, 7, 8, 9, 10], (worker_1.output(), worker_2.output())
    assert (await b.runs.get(tid, run["run_id"]))["status"] == "success"
    assert (await b.threads.get(tid))["values"] == {"steps": 10}

    # Eight clients, four per API process, resume the same interrupt at once.
    paused = (await a.threads.create())["thread_id"]
    out = await b.runs.wait(paused, "agent", input={"amount": 9})
    interrupt_id = out["__interrupt__"][0]["id"]
    outcomes: list[str] = []

    async def resume(client: Any) -> None:
        try:
            made = await client.runs.create(
                paused, "agent", command={"resume": {interrupt_id: "yes"}}
            )
            outcomes.append(made["run_id"])
        except ConflictError:
            outcomes.append("409")

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(resume, a if i % 2 else b)
    winners = [o for o in outcomes if o != "409"]
    assert len(winners) == 1 and outcomes.count("409") == 7, outcomes
    final = await a.runs.join(paused, winners[0])
    assert final == {"amount": 9, "decision": "approved", "log": ["prepare", "notify"]}
    runs = await b.runs.list(paused)
    assert [r["status"] for r in runs] == ["success", "success"]
