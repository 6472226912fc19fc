"""The wide differential client script: the `langgraph-sdk` calls that Agent Chat UI, Agent
Inbox and backend code make beyond tests/apps/differential.py — every stream mode with
subgraphs over a graph with a chat model and a subgraph (tests/apps/serve/wide.py), joins,
`Command(resume, update, goto)`, the multitask strategies on a busy thread, `if_not_exists`,
`on_disconnect`, thread search/sort/paging, history filters, assistants search and graphs, the
store's paging, and the error answers (status, the SDK's exception class and message).

Normalized as tests/apps/differential.py does. Recorded once against `langgraph dev` (never in
CI; LangGraph is not a dependency):

    cd tests/server/golden && langgraph dev --no-browser --no-reload --port 28124 \
        --config langgraph_wide.json &
    PYTHONPATH=tests python tests/apps/differential_wide.py http://127.0.0.1:28124 \
        > tests/server/golden/langgraph_dev_wide.json

`tests/server/test_differential_wide.py` runs it against `hitl serve` and compares.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
from langgraph_sdk import get_client

from apps.differential import (
    Normalizer,
    project_chunk,
    project_run,
    project_state,
    project_thread,
    project_values,
    write_transcript,
)

__all__ = ["DIFFERENT_STEPS", "run_wide_script"]

DIFFERENT_STEPS = {
    "error: runs.join unknown run": "hitl-async answers 404; LangGraph answers 200 with "
    '`{"__error__": {"error": "HTTPException", "message": "404: Run not found"}}`',
    "error: runs.create another graph on a thread": "hitl-async refuses a run of another "
    "graph on a thread that belongs to one with 409; LangGraph runs it over the other "
    "graph's state",
}
"""The steps where hitl-async's documented behaviour differs (README, `hitl serve`)."""

Step = Callable[..., Awaitable[Any]]
_MARK = {"suite": "wide"}


def _error(exc: httpx.HTTPStatusError) -> dict[str, Any]:
    """Status, the SDK's exception class and its message (ids numbered apart, so a message
    naming an id leaves the numbering of later steps alone)."""
    return {
        "http_error": exc.response.status_code,
        "exception": type(exc).__name__,
        "message": Normalizer()(getattr(exc, "message", None)),
    }


_DEPLOYMENT_KEYS = frozenset(
    {
        "langgraph_api_url",
        "langgraph_api_version",
        "langgraph_host",
        "langgraph_plan",
        "langgraph_version",
        "langgraph_auth_user_id",
        "langgraph_request_id",
        "user_id",
    }
)
"""Metadata keys of LangGraph's deployment (its version, plan, host, request, auth user)."""
_CONFIGURABLE_KEYS = ("thread_id", "checkpoint_ns", "checkpoint_id")


def _client_view(value: Any, key: str = "") -> Any:
    """What a client reads of a stream chunk: a config's checkpoint address (LangGraph's server
    also copies the run's own configurable keys there), checkpoint metadata's `source`,
    `step` and `parents`, other metadata without the deployment's keys."""
    if isinstance(value, dict):
        if key in ("config", "parent_config", "state") and "configurable" in value:
            conf = value["configurable"]
            return {"configurable": {k: conf[k] for k in _CONFIGURABLE_KEYS if k in conf}}
        if key in ("checkpoint", "parent_checkpoint"):
            return {k: value[k] for k in _CONFIGURABLE_KEYS if k in value}
        if key == "metadata" and "source" in value:
            return {k: value[k] for k in ("source", "step", "parents") if k in value}
        if key == "metadata":
            return {k: v for k, v in value.items() if k not in _DEPLOYMENT_KEYS}
        return {k: _client_view(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) == 2 and isinstance(value[1], dict) and "langgraph_node" in value[1]:
            return [_client_view(value[0]), _client_view(value[1], "metadata")]
        return [_client_view(v) for v in value]
    return value


def _event(event: str, data: Any) -> dict[str, Any]:
    return {"event": event, "data": _client_view(project_chunk(event.split("|")[0], data))}


async def collect(stream: Any) -> list[dict[str, Any]]:
    """A stream's events, projected."""
    return [_event(p.event, p.data) async for p in stream]


def _subgraph_state(s: dict[str, Any]) -> dict[str, Any]:
    out = project_state(s)
    out["tasks"] = [
        {
            "name": t["name"],
            "interrupts": [i.get("value") for i in t["interrupts"]],
            "state": _subgraph_state(t["state"]) if isinstance(t.get("state"), dict) else None,
        }
        for t in s["tasks"]
    ]
    out["checkpoint_ns"] = (s.get("checkpoint") or {}).get("checkpoint_ns")
    return out


def _threads(ts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [project_thread(t) for t in ts]


async def run_wide_script(url: str) -> list[dict[str, Any]]:
    """Run the calls; one `{"step", "outcome"}` per call."""
    c = get_client(url=url)
    steps: list[dict[str, Any]] = []
    norm = Normalizer()

    async def step(name: str, call: Awaitable[Any], project: Any = lambda x: x) -> Any:
        try:
            result = await call
        except httpx.HTTPStatusError as exc:
            steps.append({"step": name, "outcome": _error(exc)})
            return None
        steps.append({"step": name, "outcome": norm(project(result))})
        return result

    await _assistant_steps(c, step)
    await _stream_steps(c, step)
    await _run_steps(c, step)
    await _multitask_steps(c, step)
    await _thread_steps(c, step)
    await _store_steps(c, step)
    await _error_steps(c, step)
    return steps


async def _assistant_steps(c: Any, step: Step) -> None:
    wide = (await c.assistants.search(graph_id="wide"))[0]["assistant_id"]
    graph_ids = lambda found: sorted(a["graph_id"] for a in found)  # noqa: E731
    await step(
        "assistants.search graph_id",
        c.assistants.search(graph_id="wide"),
        lambda found: [(a["graph_id"], a["name"], a["metadata"]) for a in found],
    )
    await step(
        "assistants.search metadata",
        c.assistants.search(metadata={"created_by": "system"}),
        graph_ids,
    )
    await step("assistants.search name", c.assistants.search(name="wide"), graph_ids)
    await step(
        "assistants.search limit offset",
        c.assistants.search(limit=1, offset=1, sort_by="graph_id", sort_order="asc"),
        graph_ids,
    )
    await step("assistants.get_graph xray", c.assistants.get_graph(wide, xray=True))
    await step("assistants.get_graph", c.assistants.get_graph(wide))
    await step(
        "assistants.get_subgraphs recurse",
        c.assistants.get_subgraphs(wide, recurse=True),
        lambda subs: {ns: sorted(schema) for ns, schema in subs.items()},
    )
    await step(
        "assistants.get_graph by graph name", c.assistants.get_graph("wide"), lambda g: len(g)
    )
    await step("assistants.get_subgraphs", c.assistants.get_subgraphs(wide), sorted)
    await step(
        "assistants.get_subgraphs namespace",
        c.assistants.get_subgraphs(wide, namespace="research"),
        sorted,
    )
    await step("assistants.get_graph xray=1", c.assistants.get_graph(wide, xray=1))
    await step("error: assistants.get_graph xray=0", c.assistants.get_graph(wide, xray=0))


async def _stream_steps(c: Any, step: Step) -> None:
    thread = await step(
        "threads.create graph_id",
        c.threads.create(metadata={**_MARK, "user": "ada"}, graph_id="wide"),
        project_thread,
    )
    tid = thread["thread_id"]
    await step(
        "runs.stream messages-tuple updates values custom subgraphs",
        collect(
            c.runs.stream(
                tid,
                "wide",
                input={"messages": [{"role": "user", "content": "hi"}], "topic": "cats"},
                stream_mode=["messages-tuple", "updates", "values", "custom"],
                stream_subgraphs=True,
            )
        ),
    )
    await step(
        "threads.get_state subgraphs", c.threads.get_state(tid, subgraphs=True), _subgraph_state
    )
    await step(
        "runs.stream resume debug tasks checkpoints subgraphs",
        collect(
            c.runs.stream(
                tid,
                "wide",
                command={"resume": "fine"},
                stream_mode=["debug", "tasks", "checkpoints"],
                stream_subgraphs=True,
            )
        ),
    )
    history = await step(
        "threads.get_history limit",
        c.threads.get_history(tid, limit=3),
        lambda hs: [project_state(h) for h in hs],
    )
    await step(
        "threads.get_history before",
        c.threads.get_history(
            tid, limit=2, before={"configurable": {"checkpoint_id": history[1]["checkpoint_id"]}}
        ),
        lambda hs: [project_state(h) for h in hs],
    )
    await step(
        "threads.get_history metadata",
        c.threads.get_history(tid, metadata={"source": "input"}),
        lambda hs: [project_state(h) for h in hs],
    )
    await step(
        "threads.get_state checkpoint_id",
        c.threads.get_state(tid, checkpoint_id=history[2]["checkpoint_id"]),
        project_state,
    )


async def _run_steps(c: Any, step: Step) -> None:
    t2 = (await c.threads.create(metadata=_MARK))["thread_id"]
    run = await step("runs.create", c.runs.create(t2, "slow", input={"steps": 8}), project_run)
    await step(
        "runs.join_stream",
        collect(c.runs.join_stream(t2, run["run_id"], stream_mode="values")),
        lambda events: [e for e in events if e["event"] == "values"][-1:],
    )
    await step("runs.join", c.runs.join(t2, run["run_id"]), project_values)
    await step("runs.get joined", c.runs.get(t2, run["run_id"]), project_run)
    t3 = (await c.threads.create(metadata=_MARK))["thread_id"]
    await step(
        "runs.wait to interrupt", c.runs.wait(t3, "agent", input={"amount": 5}), project_values
    )
    await step(
        "runs.wait Command resume update goto",
        c.runs.wait(
            t3,
            "agent",
            command={"resume": "yes", "update": {"amount": 7}, "goto": "notify"},
        ),
        project_values,
    )
    await step("threads.get_state after goto", c.threads.get_state(t3), project_state)
    await step(
        "threads.update_state as_node",
        c.threads.update_state(t3, {"decision": "vetoed"}, as_node="approve"),
        sorted,
    )
    await step("threads.get_state after update_state", c.threads.get_state(t3), project_state)
    fresh = str(uuid.uuid4())
    await step(
        "runs.wait if_not_exists create",
        c.runs.wait(fresh, "agent", input={"amount": 1}, if_not_exists="create"),
        project_values,
    )
    await step("threads.get if_not_exists", c.threads.get(fresh), project_thread)
    await step(
        "runs.wait unknown thread",
        c.runs.wait(str(uuid.uuid4()), "agent", input={"amount": 1}),
        project_values,
    )
    for behaviour in ("cancel", "continue"):
        # Not marked: how far a cancelled run got (if it started at all) depends on timing,
        # so its thread stays out of the searches below (its run's status is compared here).
        t4 = (await c.threads.create(metadata={"disconnect": behaviour}))["thread_id"]
        async for part in c.runs.stream(t4, "slow", input={"steps": 8}, on_disconnect=behaviour):
            if part.event == "metadata":
                break
        # (how far the cancelled run got depends on timing: its status is compared)
        keep = (lambda r: r["status"]) if behaviour == "cancel" else (lambda r: r)
        await step(f"on_disconnect {behaviour}", _settled(c, t4), keep)


async def _settled(c: Any, thread_id: str) -> dict[str, Any]:
    """The thread's run once it is no longer pending or running, and the thread's values."""
    with anyio.fail_after(30):
        while True:
            runs = await c.runs.list(thread_id)
            if runs and runs[0]["status"] not in ("pending", "running"):
                break
            await anyio.sleep(0.1)
    state = await c.threads.get_state(thread_id)
    return {"status": runs[0]["status"], "values": state["values"]}


async def _multitask_steps(c: Any, step: Step) -> None:
    for strategy in ("reject", "interrupt", "rollback", "enqueue"):
        tid = (await c.threads.create(metadata={**_MARK, "strategy": strategy}))["thread_id"]
        first = await c.runs.create(tid, "slow", input={"steps": 5})
        second = await step(
            f"multitask {strategy}",
            c.runs.create(tid, "slow", input={"steps": 8}, multitask_strategy=strategy),
            project_run,
        )
        if second is not None:
            await step(
                f"multitask {strategy} join", c.runs.join(tid, second["run_id"]), project_values
            )
        else:
            await c.runs.join(tid, first["run_id"])
        await step(
            f"multitask {strategy} first run",
            c.runs.get(tid, first["run_id"]),
            lambda r: r["status"],
        )
        await step(
            f"multitask {strategy} runs.list",
            c.runs.list(tid),
            lambda rs: sorted(r["status"] for r in rs),
        )


async def _thread_steps(c: Any, step: Step) -> None:
    await step(
        "threads.search status metadata",
        c.threads.search(status="interrupted", metadata=_MARK),
        _threads,
    )
    await step(
        "threads.search values",
        c.threads.search(values={"steps": 10}, metadata=_MARK, sort_by="created_at"),
        lambda ts: [t["metadata"].get("strategy") for t in ts],
    )
    found = await step(
        "threads.search sort asc limit offset",
        c.threads.search(metadata=_MARK, sort_by="created_at", sort_order="asc", limit=3, offset=1),
        _threads,
    )
    asked = [t["thread_id"] for t in found[:2]]
    await step(
        "threads.search ids",
        c.threads.search(ids=asked),
        lambda ts: sorted(asked.index(t["thread_id"]) for t in ts),
    )
    await step(
        "threads.search sort desc",
        c.threads.search(metadata=_MARK, sort_by="created_at", sort_order="desc", limit=2),
        _threads,
    )
    tid = found[0]["thread_id"]
    await step(
        "threads.update metadata merge",
        c.threads.update(tid, metadata={"user": "bob", "k": 2}),
        project_thread,
    )
    copy = await step("threads.copy", c.threads.copy(tid), project_thread)
    await step("threads.get_state of copy", c.threads.get_state(copy["thread_id"]), project_state)
    await step(
        "threads.create existing id",
        c.threads.create(thread_id=tid),
        project_thread,
    )
    await step(
        "threads.create existing do_nothing",
        c.threads.create(thread_id=tid, if_exists="do_nothing"),
        project_thread,
    )
    await step("threads.delete", c.threads.delete(copy["thread_id"]))
    await step("threads.get deleted", c.threads.get(copy["thread_id"]), project_thread)
    await step("threads.delete unknown", c.threads.delete(str(uuid.uuid4())))


async def _store_steps(c: Any, step: Step) -> None:
    for n in range(4):
        await c.store.put_item(["wide", "docs"], key=f"d{n}", value={"n": n, "even": n % 2 == 0})
    keys = lambda found: [i["key"] for i in found["items"]]  # noqa: E731
    await step(
        "store.search_items filter query None",
        c.store.search_items(["wide"], filter={"even": True}, query=None),
        lambda found: sorted(keys(found)),
    )
    await step(
        "store.search_items limit offset",
        c.store.search_items(["wide"], limit=2, offset=3),
        lambda found: len(found["items"]),
    )
    await step("store.get_item", c.store.get_item(["wide", "docs"], key="d1"))
    await step("store.delete_item", c.store.delete_item(["wide", "docs"], key="d1"))
    await step("store.get_item deleted", c.store.get_item(["wide", "docs"], key="d1"))
    await step("store.list_namespaces", c.store.list_namespaces(prefix=["wide"]))


async def _error_steps(c: Any, step: Step) -> None:
    nil = "00000000-0000-0000-0000-000000000000"
    tid = (await c.threads.create(metadata=_MARK))["thread_id"]
    await step("error: threads.get unknown", c.threads.get(nil))
    await step("error: threads.get_state unknown", c.threads.get_state(nil))
    await step("error: runs.get unknown run", c.runs.get(tid, nil))
    await step("error: runs.join unknown run", c.runs.join(tid, nil))
    await step("error: runs.cancel unknown run", c.runs.cancel(tid, nil))
    await step("error: assistants.get unknown", c.assistants.get(nil))
    await step("error: runs.create unknown assistant", c.runs.create(tid, "nope", input={}))
    await step("error: runs.create unknown assistant id", c.runs.create(tid, nil, input={}))
    await step(
        "error: runs.create_batch unknown assistant",
        c.runs.create_batch([{"assistant_id": "agent", "input": {}}, {"assistant_id": "nope"}]),
    )
    await step(
        "error: runs.create bad stream_mode",
        c.runs.create(tid, "agent", input={}, stream_mode="bogus"),
    )
    await step(
        "error: runs.create bad multitask_strategy",
        c.runs.create(tid, "agent", input={}, multitask_strategy="bogus"),
    )
    await step("error: threads.search bad status", c.threads.search(status="bogus"))
    await step(
        "error: threads.update_state on a thread without a graph",
        c.threads.update_state(tid, {"amount": 1}, as_node="nope"),
    )
    await c.runs.wait(tid, "agent", input={"amount": 2})
    await step(
        "error: threads.update_state unknown node on a graph's thread",
        c.threads.update_state(tid, {"amount": 1}, as_node="nope"),
    )
    await step(
        "error: runs.wait busy thread",
        c.runs.wait(tid, "agent", command={"resume": "yes"}),
        project_values,
    )
    await step(
        "error: runs.create another graph on a thread",
        c.runs.create(tid, "slow", input={"steps": 10}),
        lambda r: r["status"],
    )
    busy = (await c.threads.create(metadata=_MARK))["thread_id"]
    await c.runs.create(busy, "slow", input={"steps": 8})
    await step(
        "error: runs.create busy reject",
        c.runs.create(busy, "slow", input={}, multitask_strategy="reject"),
        project_run,
    )


async def _main(url: str) -> None:
    await write_transcript(url, run_wide_script)


if __name__ == "__main__":
    anyio.run(_main, sys.argv[1])
