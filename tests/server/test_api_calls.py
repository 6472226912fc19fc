"""The rest of the SDK's calls through the real async client: assistants as stored
configurations (versions, latest, delete), runs from a past checkpoint, per-run
`interrupt_before`/`interrupt_after`, `runs.cancel_many`, `runs.create_batch`, `threads.prune`
on every store; the shapes of `stream_mode="events"` (as recorded from `langgraph dev` for the
same graphs) and of the calls not served, on SQLite only."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from apps.servers import CONFIG, Proc, drop_store, serving, store_url
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

pytestmark = pytest.mark.anyio

SQLITE_ONLY = pytest.mark.parametrize("server", ["sqlite"], indirect=True)


def client(server: Proc) -> Any:
    assert server.url is not None
    return get_client(url=server.url)


async def test_assistants_are_versioned_configurations(server: Proc) -> None:
    c = client(server)
    made = await c.assistants.create(
        "configured",
        config={"configurable": {"x": 1}},
        context={"tone": "dry"},
        metadata={"team": "ops"},
        name="first",
    )
    aid = made["assistant_id"]
    assert (made["version"], made["name"], made["context"]) == (1, "first", {"tone": "dry"})
    with pytest.raises(ConflictError):
        await c.assistants.create("configured", assistant_id=aid)
    assert (
        await c.assistants.create("configured", assistant_id=aid, if_exists="do_nothing")
    ) == made
    with pytest.raises(NotFoundError):
        await c.assistants.create("no-such-graph")

    out = await c.runs.wait(None, aid, input={}, context={"lang": "fr"})
    assert out == {"x": 1, "context": {"tone": "dry", "lang": "fr"}}

    changed = await c.assistants.update(
        aid, config={"configurable": {"x": 2}}, metadata={"stage": "b"}, name="second"
    )
    assert changed["version"] == 2 and changed["metadata"] == {"team": "ops", "stage": "b"}
    assert changed["context"] == {"x": 2}  # (the configurable, as LangGraph's server does)
    assert (await c.runs.wait(None, aid, input={}))["x"] == 2
    versions = await c.assistants.get_versions(aid)
    assert [(v["version"], v["name"]) for v in versions] == [(2, "second"), (1, "first")]
    assert [
        v["version"] for v in await c.assistants.get_versions(aid, metadata={"stage": "b"})
    ] == [2]

    back = await c.assistants.set_latest(aid, 1)
    assert (back["version"], back["name"], back["config"]) == (1, "first", made["config"])
    assert (await c.assistants.get(aid))["name"] == "first"
    assert (await c.runs.wait(None, aid, input={}))["x"] == 1
    with pytest.raises(NotFoundError):
        await c.assistants.set_latest(aid, 7)

    assert await c.assistants.count(graph_id="configured") == 2
    assert await c.assistants.count(metadata={"team": "ops"}) == 1
    found = await c.assistants.search(graph_id="configured", sort_by="name", sort_order="asc")
    assert [a["name"] for a in found] == ["configured", "first"]
    page = await c.assistants.search(
        graph_id="configured", sort_by="name", limit=1, response_format="object"
    )
    assert [a["name"] for a in page["assistants"]] == ["first"] and page["next"] == "1"
    last = await c.assistants.search(
        graph_id="configured", limit=1, offset=1, response_format="object"
    )
    assert len(last["assistants"]) == 1 and last["next"] is None

    with pytest.raises(UnprocessableEntityError):
        await c.assistants.delete("configured")  # (by id only, as LangGraph's server takes it)
    ran_on = (await c.threads.create())["thread_id"]
    await c.runs.wait(ran_on, aid, input={})
    kept = (await c.threads.create())["thread_id"]
    await c.assistants.delete(aid, delete_threads=True)
    with pytest.raises(NotFoundError):
        await c.assistants.get(aid)
    with pytest.raises(NotFoundError):
        await c.threads.get(ran_on)
    assert (await c.threads.get(kept))["thread_id"] == kept
    with pytest.raises(NotFoundError):
        await c.runs.create(None, aid, input={})
    assert await c.assistants.count(graph_id="configured") == 1


async def test_run_from_a_checkpoint_and_per_run_interrupts(server: Proc) -> None:
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    await c.runs.wait(tid, "agent", input={"amount": 5})
    interrupt_id = (await c.threads.get_state(tid))["interrupts"][0]["id"]
    await c.runs.wait(tid, "agent", command={"resume": {interrupt_id: "yes"}})
    history = await c.threads.get_history(tid, limit=20)
    after_prepare = next(h for h in history if h["next"] == ["approve"])

    forked = await c.runs.wait(
        tid, "agent", input=None, checkpoint_id=after_prepare["checkpoint_id"]
    )
    assert forked["__interrupt__"][0]["value"] == {"question": "Approve 5?"}
    head = await c.threads.get_state(tid)
    assert head["parent_checkpoint"]["checkpoint_id"] == after_prepare["checkpoint_id"]
    assert "decision" not in head["values"]
    older = await c.threads.get_history(tid, limit=1, before=after_prepare["checkpoint_id"])
    assert older[0]["next"] == ["prepare"]
    inputs = await c.threads.get_history(tid, limit=20, metadata={"source": "input"})
    assert [h["next"] for h in inputs] == [["__start__"]]
    again = await c.runs.wait(
        tid, "agent", input=None, checkpoint={"checkpoint_id": after_prepare["checkpoint_id"]}
    )
    assert "__interrupt__" in again

    before = (await c.threads.create())["thread_id"]
    out = await c.runs.wait(before, "agent", input={"amount": 2}, interrupt_before=["approve"])
    assert out == {"amount": 2, "log": ["prepare"]}
    state = await c.threads.get_state(before)
    assert state["next"] == ["approve"] and state["interrupts"] == []
    after = (await c.threads.create())["thread_id"]
    await c.runs.wait(after, "agent", input={"amount": 2}, interrupt_after=["prepare"])
    assert (await c.threads.get_state(after))["next"] == ["approve"]
    resumed = await c.runs.wait(after, "agent", input=None)
    assert resumed["__interrupt__"][0]["value"] == {"question": "Approve 2?"}


async def test_cancel_many_batch_and_prune(server: Proc) -> None:
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    running = await c.runs.create(tid, "slow", input={"steps": 0})
    while (await c.runs.get(tid, running["run_id"]))["status"] == "pending":
        await anyio.sleep(0.05)
    await c.runs.cancel_many(thread_id=tid, run_ids=[running["run_id"]])
    await c.runs.join(tid, running["run_id"])
    assert (await c.runs.get(tid, running["run_id"]))["status"] == "interrupted"

    later = await c.runs.create(tid, "slow", input={"steps": 0}, after_seconds=60)
    await c.runs.cancel_many(status="pending")
    await c.runs.join(tid, later["run_id"])
    assert (await c.runs.get(tid, later["run_id"]))["status"] == "interrupted"
    with pytest.raises(NotFoundError):
        await c.runs.cancel_many(status="pending")  # ("No runs found to cancel.")
    with pytest.raises(UnprocessableEntityError):
        await c.runs.cancel_many(thread_id=tid, status="running")

    batch = await c.runs.create_batch(
        [
            {"assistant_id": "slow", "input": {"steps": 9}, "on_completion": "keep"},
            {"assistant_id": "agent", "input": {"amount": 1}, "on_completion": "keep"},
        ]
    )
    assert [r["status"] for r in batch] == ["pending", "pending"]
    before = await c.threads.count()
    with pytest.raises(UnprocessableEntityError):
        await c.runs.create_batch(
            [{"assistant_id": "slow", "input": {}}, {"assistant_id": "nope", "input": {}}]
        )
    assert await c.threads.count() == before
    assert len({r["thread_id"] for r in batch}) == 2
    assert (await c.runs.join(batch[0]["thread_id"], batch[0]["run_id"]))["steps"] == 10

    kept = batch[0]["thread_id"]
    assert len(await c.threads.get_history(kept, limit=100)) > 1
    pruned = await c.threads.prune([kept], strategy="keep_latest")
    assert pruned == {"pruned_count": 1}
    (latest,) = await c.threads.get_history(kept, limit=100)
    assert latest["values"] == {"steps": 10}
    assert await c.threads.prune([kept, tid, "no-such-thread"]) == {"pruned_count": 2}
    for gone in (kept, tid):
        with pytest.raises(NotFoundError):
            await c.threads.get(gone)


@SQLITE_ONLY
async def test_events_stream_mode(server: Proc) -> None:
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    parts = [
        p
        async for p in c.runs.stream(
            tid,
            "chat",
            input={"messages": [{"role": "user", "content": "hi"}]},
            stream_mode="events",
        )
    ]
    assert parts[0].event == "metadata"
    events = [p.data for p in parts[1:]]
    assert {p.event for p in parts[1:]} == {"events"}, [p.data for p in parts if p.event == "error"]
    assert [(e["event"], e["name"]) for e in events if e["event"] != "on_chat_model_stream"] == [
        ("on_chain_start", "chat"),
        ("on_chain_start", "chat"),
        ("on_chat_model_start", "GenericFakeChatModel"),
        ("on_chat_model_end", "GenericFakeChatModel"),
        ("on_chain_stream", "chat"),
        ("on_chain_end", "chat"),
        ("on_chain_end", "chat"),
    ]
    graph_start, node_start = events[0], events[1]
    assert graph_start["parent_ids"] == [] and graph_start["tags"] == []
    assert graph_start["run_id"] == parts[0].data["run_id"]
    assert node_start["tags"] == ["graph:step:1"]
    assert node_start["parent_ids"] == [graph_start["run_id"]]
    assert node_start["metadata"]["langgraph_node"] == "chat"
    tokens = [e for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(e["data"]["chunk"]["content"] for e in tokens) == "hello there friend"
    assert all(e["parent_ids"] == [graph_start["run_id"], node_start["run_id"]] for e in tokens)
    assert events[-1]["data"]["output"]["messages"][-1]["content"] == "hello there friend"

    paused = (await c.threads.create())["thread_id"]
    mixed = [
        p
        async for p in c.runs.stream(
            paused, "agent", input={"amount": 3}, stream_mode=["events", "updates"]
        )
    ]
    assert [p.event for p in mixed].count("updates") == 2
    named = [(p.data["event"], p.data["name"]) for p in mixed if p.event == "events"]
    assert named == [
        ("on_chain_start", "agent"),
        ("on_chain_start", "prepare"),
        ("on_chain_stream", "prepare"),
        ("on_chain_end", "prepare"),
        ("on_chain_start", "approve"),
        ("on_chain_end", "agent"),
    ]
    assert mixed[-1].data["data"]["output"] == {"amount": 3, "log": ["prepare"]}


@SQLITE_ONLY
async def test_thread_and_run_options(server: Proc) -> None:
    c = client(server)
    made = await c.threads.create(
        graph_id="agent",
        metadata={"case": "options"},
        supersteps=[{"updates": [{"values": {"amount": 7, "log": ["x"]}, "as_node": "prepare"}]}],
    )
    tid = made["thread_id"]
    assert made["status"] == "interrupted" and made["values"] == {"amount": 7, "log": ["x"]}
    state = await c.threads.get_state(tid)
    assert state["next"] == ["approve"] and state["metadata"]["source"] == "update"
    with pytest.raises(UnprocessableEntityError):
        await c.threads.create(supersteps=[{"updates": [{"values": {}, "as_node": "prepare"}]}])
    with pytest.raises(UnprocessableEntityError):
        await c.threads.create(
            graph_id="agent", supersteps=[{"updates": [{"values": {}, "as_node": "nope"}]}]
        )
    assert await c.threads.count(metadata={"case": "options"}) == 1

    assert await c.threads.update(tid, metadata={"seen": 1}, return_minimal=True) is None
    assert (await c.threads.get(tid))["metadata"]["seen"] == 1
    (found,) = await c.threads.search(
        metadata={"case": "options"},
        select=["thread_id"],
        extract={"amount": "values.amount", "first": "values.log.0", "none": "values.nope"},
    )
    assert found == {
        "thread_id": tid,
        "extracted": {"amount": 7, "first": "x", "none": None},
    }

    out = await c.runs.wait(tid, "agent", input=None)
    assert out["__interrupt__"][0]["value"] == {"question": "Approve 7?"}
    assert await c.runs.list(tid, select=["status"]) == [{"status": "success"}]
    run = await c.runs.create(
        None, "slow", input={"steps": 8}, stream_mode=["values", "updates"], metadata={"who": "me"}
    )
    assert run["metadata"] == {
        "created_by": "system",
        "graph_id": "slow",
        "assistant_id": run["assistant_id"],
        "who": "me",
    }
    joined = [
        p.event
        async for p in c.runs.join_stream(run["thread_id"], run["run_id"], stream_mode="updates")
    ]
    assert joined == ["metadata", "updates", "updates"]


async def test_webhook_receives_the_ended_run(tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    url = store_url("sqlite", tmp_path)
    try:
        with serving(url, tmp_path, config=CONFIG.with_name("langgraph_webhooks.json")) as proc:
            c = client(proc)
            out = await c.runs.wait(None, "slow", input={"steps": 9}, webhook=hook)
            assert out == {"steps": 10}
            with anyio.fail_after(30):
                while not received:
                    await anyio.sleep(0.05)
    finally:
        receiver.shutdown()
        drop_store(url)
    (payload,) = received
    assert payload["status"] == "success" and payload["values"] == {"steps": 10}
    assert payload["kwargs"]["webhook"] == hook and payload["webhook_sent_at"]


@SQLITE_ONLY
async def test_unserved_calls_answer_as_langgraph_does(server: Proc) -> None:
    c = client(server)
    for call in (
        c.crons.search(),
        c.crons.count(),
        c.crons.create("agent", schedule="* * * * *", input={"amount": 1}),
        c.crons.delete("00000000-0000-0000-0000-000000000000"),
    ):
        with pytest.raises(NotFoundError, match="crons"):
            await call
    tid = (await c.threads.create())["thread_id"]
    for hook, why in (
        ("http://127.0.0.1:9/hook", "loopback IP range"),
        ("http://localhost/hook", "loopback IP range"),
        ("http://169.254.169.254/latest", "cloud metadata endpoint"),
        ("/threads", "relative webhook URLs"),
        ("ftp://example.com/x", "scheme"),
    ):
        with pytest.raises(UnprocessableEntityError, match=why):
            await c.runs.create(tid, "agent", input={"amount": 1}, webhook=hook)
    assert await c.runs.list(tid) == []
    assert server.url is not None
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/info")).json()["flags"]["crons"] is False
        for path in (f"/threads/{tid}/commands", f"/threads/{tid}/stream/events"):
            refused = await http.post(path, json={})
            assert refused.status_code == 404 and "threads.stream" in refused.json()["detail"]
