"""`hitl serve` driven through the real `langgraph-sdk` async client, on SQLite, PostgreSQL and
Redis: assistants, threads, state, runs (stream, wait, join, cancel, multitask strategies) and
the strict resume rules as HTTP errors."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from apps.servers import Proc
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

pytestmark = pytest.mark.anyio

AGENT_ID = "fe096781-5601-53d2-b2f6-0d3403f7e9ca"  # LangGraph's id of a graph named "agent"


def client(server: Proc) -> Any:
    assert server.url is not None
    return get_client(url=server.url)


async def paused_thread(c: Any, amount: float = 5, **metadata: Any) -> tuple[str, str]:
    """A thread paused at the approval interrupt; (thread id, interrupt id)."""
    thread = await c.threads.create(metadata=metadata or None)
    out = await c.runs.wait(thread["thread_id"], "agent", input={"amount": amount})
    return thread["thread_id"], out["__interrupt__"][0]["id"]


async def test_meta_and_assistants(server: Proc) -> None:
    c = client(server)
    assert server.url is not None
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/ok")).json() == {"ok": True}
        info = (await http.get("/info")).json()
        assert info["flags"]["strict_resume"] is True
        assert (
            "/threads/{thread_id}/runs/stream" in (await http.get("/openapi.json")).json()["paths"]
        )
    found = await c.assistants.search()
    assert sorted(a["graph_id"] for a in found) == [
        "agent",
        "chat",
        "configured",
        "memory",
        "nested",
        "pair",
        "slow",
    ]
    agent = next(a for a in found if a["graph_id"] == "agent")
    assert agent["assistant_id"] == AGENT_ID
    assert agent["metadata"] == {"created_by": "system"}
    assert await c.assistants.get(AGENT_ID) == agent
    assert (await c.assistants.get("agent"))["assistant_id"] == AGENT_ID
    assert [a["graph_id"] for a in await c.assistants.search(graph_id="slow")] == ["slow"]
    schemas = await c.assistants.get_schemas(AGENT_ID)
    assert set(schemas["state_schema"]["properties"]) == {"amount", "decision", "log"}
    for part in ("input", "output"):  # the state's keys: the graph names no other schema
        assert set(schemas[f"{part}_schema"]["properties"]) == {"amount", "decision", "log"}
        assert schemas[f"{part}_schema"]["title"] == f"agent_{part}"
    drawn = await c.assistants.get_graph(AGENT_ID)
    assert [n["id"] for n in drawn["nodes"]] == [
        "__start__",
        "prepare",
        "approve",
        "notify",
        "__end__",
    ]
    assert {"source": "prepare", "target": "approve"} in drawn["edges"]
    with pytest.raises(NotFoundError):
        await c.assistants.get("00000000-0000-0000-0000-000000000000")


async def test_thread_lifecycle(server: Proc) -> None:
    c = client(server)
    thread = await c.threads.create(metadata={"user": "ada"})
    tid = thread["thread_id"]
    assert thread["status"] == "idle" and thread["metadata"] == {"user": "ada"}
    assert (await c.threads.get(tid))["status"] == "idle"
    assert (await c.threads.get_state(tid))["values"] == {}

    parts = [
        p
        async for p in c.runs.stream(
            tid, "agent", input={"amount": 5}, stream_mode=["values", "updates", "custom"]
        )
    ]
    events = [p.event for p in parts]
    assert events[0] == "metadata"
    assert events.count("updates") == 2 and "custom" in events
    assert {"progress": "prepared"} in [p.data for p in parts if p.event == "custom"]
    interrupt = [p.data for p in parts if p.event == "updates"][1]
    last_values = [p.data for p in parts if p.event == "values"][-1]
    assert last_values["log"] == ["prepare"]

    got = await c.threads.get(tid)
    assert got["status"] == "interrupted"
    assert got["metadata"]["graph_id"] == "agent" and got["metadata"]["user"] == "ada"
    (pending,) = [i for group in got["interrupts"].values() for i in group]
    assert pending["value"] == {"question": "Approve 5.0?"} or pending["value"] == {
        "question": "Approve 5?"
    }
    assert interrupt["__interrupt__"][0]["id"] == pending["id"]
    state = await c.threads.get_state(tid)
    assert state["next"] == ["approve"] and state["interrupts"][0]["id"] == pending["id"]
    assert tid in [t["thread_id"] for t in await c.threads.search(status="interrupted", limit=100)]
    assert [
        t["thread_id"] for t in await c.threads.search(metadata={"user": "ada"}, limit=100)
    ] == [tid]

    final = await c.runs.wait(tid, "agent", command={"resume": "yes"})
    assert final == {"amount": 5, "decision": "approved", "log": ["prepare", "notify"]}
    got = await c.threads.get(tid)
    assert got["status"] == "idle" and got["interrupts"] == {} and got["values"] == final

    history = await c.threads.get_history(tid, limit=3)
    assert len(history) == 3 and history[0]["values"] == final and history[0]["next"] == []
    older = await c.threads.get_state(tid, checkpoint_id=history[1]["checkpoint_id"])
    assert older["checkpoint_id"] == history[1]["checkpoint_id"]

    updated = await c.threads.update_state(tid, {"decision": "vetoed"}, as_node="approve")
    assert updated["checkpoint"]["thread_id"] == tid
    state = await c.threads.get_state(tid)
    assert state["values"]["decision"] == "vetoed" and state["next"] == ["notify"]
    assert state["checkpoint_id"] == updated["checkpoint_id"]

    patched = await c.threads.update(tid, metadata={"k": 1})
    assert patched["metadata"]["k"] == 1 and patched["metadata"]["user"] == "ada"
    copied = await c.threads.copy(tid)
    assert copied["thread_id"] != tid
    assert (await c.threads.get_state(copied["thread_id"]))["values"] == state["values"]

    await c.threads.delete(tid)
    with pytest.raises(NotFoundError):
        await c.threads.get(tid)
    await c.threads.delete(copied["thread_id"])


async def test_background_run_join_get_list(server: Proc) -> None:
    c = client(server)
    tid, _ = await paused_thread(c, 7)
    run = await c.runs.create(tid, "agent", command={"resume": "no"})
    assert run["status"] in ("pending", "running") and run["thread_id"] == tid
    joined = await c.runs.join(tid, run["run_id"])
    assert joined["decision"] == "rejected"
    got = await c.runs.get(tid, run["run_id"])
    assert got["status"] == "success" and got["kwargs"]["command"] == {"resume": "no"}
    listed = await c.runs.list(tid)
    assert listed[0]["run_id"] == run["run_id"] and len(listed) == 2
    streamed = [p async for p in c.runs.join_stream(tid, run["run_id"])]
    assert streamed[0].event == "metadata" and streamed[-1].data["decision"] == "rejected"


async def test_strict_resume_errors(server: Proc) -> None:
    c = client(server)
    tid, interrupt_id = await paused_thread(c)
    with pytest.raises(ConflictError) as unknown:
        await c.runs.create(tid, "agent", command={"resume": {"f" * 32: "yes"}})
    body = unknown.value.response.json()
    assert body["error"] == "UnknownInterruptError" and body["pending"] == [interrupt_id]
    assert (await c.threads.get(tid))["status"] == "interrupted"

    await c.runs.wait(tid, "agent", command={"resume": {interrupt_id: "yes"}})
    with pytest.raises(httpx.HTTPStatusError) as answered:  # runs.wait raises httpx's own
        await c.runs.wait(tid, "agent", command={"resume": {interrupt_id: "yes"}})
    assert answered.value.response.status_code == 409
    assert answered.value.response.json()["pending"] == []
    assert [r["status"] for r in await c.runs.list(tid)] == ["success", "success"]

    with pytest.raises(NotFoundError):
        await c.runs.create("00000000-0000-0000-0000-000000000000", "agent", input={"amount": 1})
    with pytest.raises(UnprocessableEntityError, match="registered graphs: agent"):
        await c.runs.create(tid, "no-such-graph", input={"amount": 1})  # neither id nor graph
    with pytest.raises(NotFoundError):
        await c.runs.create(tid, "00000000-0000-0000-0000-000000000000", input={"amount": 1})
    with pytest.raises(UnprocessableEntityError):
        await c.runs.create(tid, "agent", input={"amount": 1}, stream_mode="no-such-mode")


async def test_resume_of_a_busy_thread_is_409(server: Proc) -> None:
    c = client(server)
    tid, interrupt_id = await paused_thread(c)
    slow = await c.threads.create()
    started = await c.runs.create(slow["thread_id"], "slow", input={"steps": 0})
    with pytest.raises(ConflictError):
        await c.runs.create(
            slow["thread_id"], "slow", input={"steps": 0}, multitask_strategy="reject"
        )
    await c.runs.cancel(slow["thread_id"], started["run_id"], wait=True)
    assert (await c.runs.get(slow["thread_id"], started["run_id"]))["status"] == "interrupted"
    queued = await c.runs.create(tid, "agent", command={"resume": {interrupt_id: "yes, slowly"}})
    with pytest.raises(ConflictError) as busy:
        await c.runs.create(tid, "agent", command={"resume": {interrupt_id: "yes"}})
    assert "already running" in busy.value.response.json()["detail"]
    await c.runs.join(tid, queued["run_id"])


async def test_multitask_strategies(server: Proc) -> None:
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    first = await c.runs.create(tid, "slow", input={"steps": 5})
    second = await c.runs.create(tid, "slow", input={"steps": 8}, multitask_strategy="enqueue")
    assert (await c.runs.join(tid, second["run_id"]))["steps"] == 10
    assert (await c.runs.get(tid, first["run_id"]))["status"] == "success"

    first = await c.runs.create(tid, "slow", input={"steps": 0})
    while (await c.runs.get(tid, first["run_id"]))["status"] == "pending":
        await anyio.sleep(0.05)
    newer = await c.runs.create(tid, "slow", input={"steps": 9}, multitask_strategy="interrupt")
    assert (await c.runs.join(tid, newer["run_id"]))["steps"] == 10
    assert (await c.runs.get(tid, first["run_id"]))["status"] == "interrupted"

    before = (await c.threads.get_state(tid))["checkpoint_id"]
    doomed = await c.runs.create(tid, "slow", input={"steps": 0})
    while (await c.runs.get(tid, doomed["run_id"]))["status"] == "pending":
        await anyio.sleep(0.05)
    kept = await c.runs.create(tid, "slow", input={"steps": 9}, multitask_strategy="rollback")
    await c.runs.join(tid, kept["run_id"])
    with pytest.raises(NotFoundError):
        await c.runs.get(tid, doomed["run_id"])
    history = await c.threads.get_history(tid, limit=100)
    assert before in [h["checkpoint_id"] for h in history]
    assert (await c.threads.get(tid))["values"]["steps"] == 10


async def test_if_not_exists_after_seconds_and_stateless(server: Proc) -> None:
    c = client(server)
    tid = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(NotFoundError):
        await c.runs.create(tid, "agent", input={"amount": 1})
    out = await c.runs.wait(tid, "agent", input={"amount": 2}, if_not_exists="create")
    assert out["__interrupt__"][0]["value"]["question"].startswith("Approve 2")
    later = await c.runs.create(tid, "agent", command={"resume": "yes"}, after_seconds=1)
    assert (await c.runs.get(tid, later["run_id"]))["status"] == "pending"
    assert (await c.runs.join(tid, later["run_id"]))["decision"] == "approved"
    await c.threads.delete(tid)

    stateless = await c.runs.wait(None, "agent", input={"amount": 3})
    assert stateless["log"] == ["prepare"] and "__interrupt__" in stateless
    parts = [
        p async for p in c.runs.stream(None, "slow", input={"steps": 8}, stream_mode="updates")
    ]
    assert [p.data for p in parts if p.event == "updates"] == [
        {"tick": {"steps": 9}},
        {"tick": {"steps": 10}},
    ]


async def test_failed_run(server: Proc) -> None:
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    parts = [p async for p in c.runs.stream(tid, "slow", input={"fail": True})]
    assert parts[-1].event == "error"
    assert parts[-1].data["error"] == "RuntimeError"
    assert (await c.threads.get(tid))["status"] == "error"
    (run,) = await c.runs.list(tid)
    assert run["status"] == "error"
    with pytest.raises(Exception, match="failed on purpose"):
        await c.runs.wait(tid, "slow", input={"fail": True})


async def test_reconnect_with_last_event_id_misses_nothing(server: Proc) -> None:
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    assert server.url is not None
    seen: list[tuple[str, str]] = []
    run_id = None
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        body = {"assistant_id": "slow", "input": {"steps": 4}, "stream_mode": ["updates"]}
        async with http.stream("POST", f"/threads/{tid}/runs/stream", json=body) as res:
            assert res.headers["location"].endswith("/stream")
            event = ident = ""
            async for line in res.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("id: "):
                    ident = line[4:]
                elif line.startswith("data: ") and event == "metadata":
                    import json

                    run_id = json.loads(line[6:])["run_id"]
                elif line == "" and event:
                    seen.append((event, ident))
                    event = ""
                if sum(1 for e, _ in seen if e == "updates") == 2:
                    break  # the client drops the connection mid-stream
    assert run_id is not None and all(i for _, i in seen)
    rest = [p async for p in c.runs.join_stream(tid, run_id, last_event_id=seen[-1][1])]
    everything = [p async for p in c.runs.join_stream(tid, run_id)]
    steps = [p.data["tick"]["steps"] for p in everything if p.event == "updates"]
    assert steps == list(range(5, 11))
    resumed = [p.data["tick"]["steps"] for p in rest if p.event == "updates"]
    assert resumed == steps[2:]


async def test_parallel_interrupts_are_answered_by_id(server: Proc) -> None:
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    out = await c.runs.wait(tid, "pair", input={"answers": []})
    pending = {i["value"]: i["id"] for i in out["__interrupt__"]}
    assert set(pending) == {"left?", "right?"}
    with pytest.raises(ConflictError) as ambiguous:
        await c.runs.create(tid, "pair", command={"resume": "yes"})
    body = ambiguous.value.response.json()
    assert body["error"] == "AmbiguousResumeError" and sorted(body["pending"]) == sorted(
        pending.values()
    )
    half = await c.runs.wait(tid, "pair", command={"resume": {pending["left?"]: "L"}})
    assert [i["id"] for i in half["__interrupt__"]] == [pending["right?"]]
    done = await c.runs.wait(tid, "pair", command={"resume": {pending["right?"]: "R"}})
    assert sorted(done["answers"]) == ["left=L", "right=R"]
    assert (await c.threads.get(tid))["status"] == "idle"


async def test_subgraph_events_and_disconnect_cancel(server: Proc) -> None:
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    flat = [
        p async for p in c.runs.stream(tid, "nested", input={"steps": 0}, stream_mode="updates")
    ]
    assert [p.event for p in flat] == ["metadata", "updates"]
    deep = [
        p
        async for p in c.runs.stream(
            tid, "nested", input={"steps": 0}, stream_mode="updates", stream_subgraphs=True
        )
    ]
    names = [p.event for p in deep]
    assert names[-1] == "updates" and any(n.startswith("updates|child:") for n in names), names
    inner = next(p for p in deep if p.event.startswith("updates|child:"))
    assert inner.data == {"inner_step": {"steps": 1}}

    slow = (await c.threads.create())["thread_id"]
    async for part in c.runs.stream(
        slow, "slow", input={"steps": 0}, stream_mode="updates", on_disconnect="cancel"
    ):
        if part.event == "metadata":
            run_id = part.data["run_id"]
        if part.event == "updates":
            break  # the client goes away mid-run
    with anyio.fail_after(30):
        while (await c.runs.get(slow, run_id))["status"] != "interrupted":
            await anyio.sleep(0.1)
    await c.runs.delete(slow, run_id)
    with pytest.raises(NotFoundError):
        await c.runs.get(slow, run_id)


async def test_messages_stream_tokens(server: Proc) -> None:
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    hi = {"messages": [{"role": "user", "content": "hi"}]}
    tuples = [p async for p in c.runs.stream(tid, "chat", input=hi, stream_mode="messages-tuple")]
    tokens = [p.data for p in tuples if p.event == "messages"]
    assert len(tokens) > 1 and all(m["type"] == "AIMessageChunk" for m, _ in tokens)
    assert "".join(m["content"] for m, _ in tokens) == "hello there friend"
    assert tokens[0][1]["langgraph_node"] == "chat"

    parts = [
        p async for p in c.runs.stream(tid, "chat", input=hi, stream_mode=["messages", "values"])
    ]
    names = [p.event for p in parts]
    assert names[1:3] == ["values", "messages/metadata"], names
    partials = [p.data[0] for p in parts if p.event == "messages/partial"]
    assert [m["content"] for m in partials][-1] == "hello there friend"
    assert all(m["type"] == "ai" for m in partials) and len(partials) == len(tokens)
    assert [m["content"] for m in partials] == sorted((m["content"] for m in partials), key=len)
    final = [p.data for p in parts if p.event == "values"][-1]
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "human", "ai"]


async def test_debug_tasks_and_checkpoints_modes(server: Proc) -> None:
    """The shapes `langgraph dev` streams for the same run: debug events `{type, step,
    timestamp, payload}` whose checkpoint payloads name the checkpoint and its parent, task
    start/result events, and checkpoint events."""
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    parts = [
        p
        async for p in c.runs.stream(
            tid, "agent", input={"amount": 5}, stream_mode=["debug", "tasks", "checkpoints"]
        )
    ]
    debug = [p.data for p in parts if p.event == "debug"]
    assert all(set(d) == {"type", "step", "timestamp", "payload"} for d in debug)
    checkpoints = [d["payload"] for d in debug if d["type"] == "checkpoint"]
    assert [d["step"] for d in debug if d["type"] == "checkpoint"][:2] == [-1, 0]
    for payload in checkpoints:
        conf = payload["config"]["configurable"]
        assert payload["checkpoint"] == {
            "checkpoint_id": conf["checkpoint_id"],
            "thread_id": tid,
            "checkpoint_ns": "",
        }
    assert checkpoints[0]["parent_checkpoint"] is None
    assert checkpoints[1]["parent_checkpoint"] == checkpoints[0]["checkpoint"]
    assert {d["type"] for d in debug} == {"checkpoint", "task", "task_result"}
    tasks = [p.data for p in parts if p.event == "tasks"]
    assert [t["name"] for t in tasks if "triggers" in t] == ["prepare", "approve"]
    assert {"id", "name", "result", "error", "interrupts"} <= set(tasks[1])
    stored = [p.data for p in parts if p.event == "checkpoints"]
    assert all(
        {"config", "metadata", "next", "parent_config", "tasks", "values"} <= set(s) for s in stored
    )
    assert stored[-1]["next"] == ["approve"]


async def _runs_done(parts: list[Any], count: int) -> None:
    with anyio.fail_after(10):
        while sum(p.event == "metadata" and "status" in p.data for p in parts) < count:
            await anyio.sleep(0.05)


async def test_thread_join_stream_follows_every_run(server: Proc) -> None:
    """`threads.join_stream`: the events of each run on the thread as they happen (a
    `metadata` with the run id first, `metadata {"status": "run_done"}` last), run after run;
    with `last_event_id` it goes on from there, across run boundaries. (`langgraph dev` streams
    the same events up to the id checks: two of its ids repeat, and it replays nothing.)"""
    c = client(server)
    tid = (await c.threads.create())["thread_id"]
    got: list[Any] = []

    async def listen() -> None:
        async for part in await c.threads.join_stream(tid):
            got.append(part)

    async with anyio.create_task_group() as tg:
        tg.start_soon(listen)
        await anyio.sleep(0.5)
        out = await c.runs.wait(tid, "agent", input={"amount": 5})
        await _runs_done(got, 1)
        first_run = next(p.data["run_id"] for p in got if p.event == "metadata")
        interrupt_id = out["__interrupt__"][0]["id"]
        await c.runs.wait(tid, "agent", command={"resume": {interrupt_id: "yes"}})
        await _runs_done(got, 2)
        tg.cancel_scope.cancel()
    events = [p.event for p in got]
    assert events.count("metadata") == 4 and set(events) == {"metadata", "values"}, events
    done = [p.data for p in got if p.event == "metadata" and "status" in p.data]
    assert done[0] == {"status": "run_done", "run_id": first_run}
    assert got[-1].data["status"] == "run_done" and done[1]["run_id"] != first_run
    assert "__interrupt__" in [p for p in got if p.event == "values"][2].data
    assert got[-2].data["decision"] == "approved"
    assert len({p.id for p in got}) == len(got)  # every event has an id of its own

    # A client that saw up to the first run's last values event misses nothing.
    cut = next(i for i, p in enumerate(got) if p.event == "metadata" and "status" in p.data)
    rest: list[Any] = []
    with anyio.move_on_after(3):
        async for part in await c.threads.join_stream(tid, last_event_id=got[cut - 1].id):
            rest.append(part)
            if len(rest) == len(got) - cut:
                break
    assert [(p.event, p.data) for p in rest] == [(p.event, p.data) for p in got[cut:]]
