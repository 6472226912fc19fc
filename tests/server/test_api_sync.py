"""The same API through `langgraph-sdk`'s synchronous client, on SQLite, PostgreSQL and Redis
(the calls whose return differs in the sync client: `None` for delete and cancel_many)."""

from __future__ import annotations

import httpx
import pytest
from apps.servers import Proc
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError


def test_sync_client_round_trip(server: Proc) -> None:
    c = get_sync_client(url=server.url)
    assert {a["graph_id"] for a in c.assistants.search()} == {
        "agent",
        "chat",
        "configured",
        "memory",
        "nested",
        "pair",
        "slow",
    }
    assert c.assistants.get_schemas("agent")["graph_id"] == "agent"
    thread = c.threads.create(metadata={"team": "ops"})
    tid = thread["thread_id"]
    parts = list(c.runs.stream(tid, "agent", input={"amount": 8}, stream_mode="updates"))
    assert [p.event for p in parts] == ["metadata", "updates", "updates"]
    interrupt_id = parts[-1].data["__interrupt__"][0]["id"]
    assert c.threads.get(tid)["status"] == "interrupted"
    assert [t["thread_id"] for t in c.threads.search(metadata={"team": "ops"})] == [tid]
    assert c.threads.get_state(tid)["interrupts"][0]["id"] == interrupt_id

    with pytest.raises(ConflictError):
        c.runs.create(tid, "agent", command={"resume": {"a" * 32: "yes"}})
    run = c.runs.create(tid, "agent", command={"resume": {interrupt_id: "yes"}})
    assert c.runs.join(tid, run["run_id"])["decision"] == "approved"
    assert c.runs.get(tid, run["run_id"])["status"] == "success"
    assert len(c.runs.list(tid)) == 2
    with pytest.raises(httpx.HTTPStatusError) as again:
        c.runs.wait(tid, "agent", command={"resume": "yes"})
    assert again.value.response.status_code == 409

    history = c.threads.get_history(tid, limit=2)
    assert history[0]["values"]["log"] == ["prepare", "notify"]
    c.threads.update_state(tid, {"decision": "rejected"}, as_node="approve")
    assert c.threads.get_state(tid)["values"]["decision"] == "rejected"
    assert c.threads.update(tid, metadata={"seen": True})["metadata"]["seen"] is True
    copy = c.threads.copy(tid)
    assert c.threads.get_state(copy["thread_id"])["values"]["decision"] == "rejected"

    slow = c.threads.create()["thread_id"]
    started = c.runs.create(slow, "slow", input={"steps": 0})
    c.runs.cancel(slow, started["run_id"], wait=True)
    assert c.runs.get(slow, started["run_id"])["status"] == "interrupted"
    assert c.runs.wait(None, "slow", input={"steps": 9}) == {"steps": 10}

    for t in (tid, copy["thread_id"], slow):
        c.threads.delete(t)
    with pytest.raises(NotFoundError):
        c.threads.get(tid)


def test_sync_client_added_calls(server: Proc) -> None:
    c = get_sync_client(url=server.url)
    made = c.assistants.create("configured", config={"configurable": {"x": 3}}, name="sync")
    aid = made["assistant_id"]
    assert c.assistants.update(aid, name="sync2")["version"] == 2
    assert [v["version"] for v in c.assistants.get_versions(aid)] == [2, 1]
    assert c.assistants.set_latest(aid, 1)["name"] == "sync"
    assert c.runs.wait(None, aid, input={})["x"] == 3
    assert c.assistants.delete(aid) is None
    with pytest.raises(NotFoundError):
        c.assistants.get(aid)

    (run,) = c.runs.create_batch([{"assistant_id": "slow", "input": {"steps": 9}}])
    tid = c.threads.create()["thread_id"]
    later = c.runs.create(tid, "slow", input={"steps": 0}, after_seconds=60)
    assert c.runs.cancel_many(thread_id=tid, run_ids=[later["run_id"]]) is None
    c.runs.join(tid, later["run_id"])
    assert c.runs.get(tid, later["run_id"])["status"] == "interrupted"
    assert c.threads.prune([tid]) == {"pruned_count": 1}
    parts = list(c.runs.stream(None, "slow", input={"steps": 9}, stream_mode="events"))
    events = [p.data["event"] for p in parts if p.event == "events"]
    assert events[0] == "on_chain_start" and events[-1] == "on_chain_end"
    assert run["status"] == "pending"
