"""The differential client script: the same `langgraph-sdk` calls against a LangGraph API
server, giving a normalized transcript (ids become `<id:N>` in order of appearance, timestamps
`<ts>`; of each answer it keeps what a client reads, not server-internal bookkeeping such as
LangGraph's `langgraph_*` metadata keys).

Recorded once against `langgraph dev` (never in CI; LangGraph is not a dependency):

    cd tests/server/golden && langgraph dev --no-browser --no-reload --port 28123 &
    PYTHONPATH=tests python tests/apps/differential.py http://127.0.0.1:28123 \
        > tests/server/golden/langgraph_dev.json

`tests/server/test_differential.py` runs it against `hitl serve` and compares, step by step,
except the steps where hitl-async's documented strict semantics differ (`STRICT_STEPS`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx
from langgraph_sdk import get_client

__all__ = [
    "STRICT_STEPS",
    "Normalizer",
    "normalize",
    "project_chunk",
    "project_interrupts",
    "project_run",
    "project_state",
    "project_thread",
    "project_values",
    "run_script",
    "write_transcript",
]

STRICT_STEPS = {
    "resume unknown interrupt id": "hitl-async refuses it with 409 (UnknownInterruptError) and "
    "the pending ids; LangGraph accepts the run and ignores the answer",
    "join after unknown resume": "no run was created for the refused resume",
    "runs.list": "the run LangGraph made for the unknown resume is listed there",
    "resume a thread that is not interrupted": "hitl-async refuses it with 409 "
    "(NoPendingInterruptError); LangGraph runs it and changes nothing",
}

_ID = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[0-9a-f]{32}\b"
)
_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)$")
_USER_KEYS = frozenset({"user", "k", "graph_id", "assistant_id", "created_by"})


class Normalizer:
    """Ids to `<id:N>` (the same id, the same N), timestamps to `<ts>`."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self(k): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        if isinstance(value, str):
            if _TS.match(value):
                return "<ts>"
            return _ID.sub(self._id, value)
        return value

    def _id(self, match: re.Match[str]) -> str:
        return self.ids.setdefault(match.group(0), f"<id:{len(self.ids) + 1}>")


normalize = Normalizer


def project_interrupts(items: Any) -> Any:
    return [{"id": i.get("id"), "value": i.get("value")} for i in items or []]


def project_thread(t: dict[str, Any]) -> dict[str, Any]:
    out = {
        "thread_id": t["thread_id"],
        "status": t["status"],
        "metadata": {k: v for k, v in t["metadata"].items() if k in _USER_KEYS},
        "values": t.get("values"),
    }
    if "interrupts" in t:
        out["interrupts"] = {k: project_interrupts(v) for k, v in (t["interrupts"] or {}).items()}
    return out


def project_state(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "values": s["values"],
        "next": s["next"],
        "tasks": [
            {"name": t["name"], "interrupts": project_interrupts(t["interrupts"])}
            for t in s["tasks"]
        ],
        "interrupts": project_interrupts(s["interrupts"]),
        "source": (s.get("metadata") or {}).get("source"),
        "step": (s.get("metadata") or {}).get("step"),
        "has_checkpoint": s["checkpoint_id"] is not None,
    }


def project_chunk(event: str, data: Any) -> Any:
    if isinstance(data, dict) and "__interrupt__" in data:
        return {**data, "__interrupt__": project_interrupts(data["__interrupt__"])}
    if event == "metadata":
        return {"run_id": data["run_id"]}
    return data


def project_run(r: dict[str, Any]) -> dict[str, Any]:
    kwargs = r.get("kwargs") or {}
    return {
        "run_id": r["run_id"],
        "thread_id": r["thread_id"],
        "assistant_id": r["assistant_id"],
        "status": r["status"],
        "input": kwargs.get("input"),
        "command": kwargs.get("command"),
        "multitask_strategy": r.get("multitask_strategy"),
    }


async def run_script(url: str) -> list[dict[str, Any]]:
    """Run the calls; one `{"step", "outcome"}` per call (`outcome` is the projected answer or
    `{"http_error": status}`)."""
    c = get_client(url=url)
    steps: list[dict[str, Any]] = []
    norm = Normalizer()

    async def step(name: str, call: Any, project: Any = lambda x: x) -> Any:
        try:
            result = await call
        except httpx.HTTPStatusError as exc:
            outcome = {"http_error": exc.response.status_code}
            if name in STRICT_STEPS:
                outcome["error"] = exc.response.json().get("error")
            steps.append({"step": name, "outcome": outcome})
            return None
        # A strict step is numbered apart, so ids of later steps keep matching.
        steps.append(
            {
                "step": name,
                "outcome": (Normalizer() if name in STRICT_STEPS else norm)(project(result)),
            }
        )
        return result

    async def collect(stream: Any) -> list[dict[str, Any]]:
        return [{"event": p.event, "data": project_chunk(p.event, p.data)} async for p in stream]

    found = await step(
        "assistants.search",
        c.assistants.search(),
        lambda a: sorted(
            (
                {k: x[k] for k in ("assistant_id", "graph_id", "name", "metadata", "version")}
                for x in a
            ),
            key=lambda x: x["graph_id"],
        ),
    )
    agent = next(a["assistant_id"] for a in found if a["graph_id"] == "agent")
    await step("assistants.get", c.assistants.get(agent), lambda a: a["graph_id"])
    await step(
        "assistants.get_graph",
        c.assistants.get_graph(agent),
        lambda g: sorted((e["source"], e["target"]) for e in g["edges"]),
    )
    thread = await step(
        "threads.create", c.threads.create(metadata={"user": "ada"}), project_thread
    )
    tid = thread["thread_id"]
    await step("threads.get new", c.threads.get(tid), project_thread)
    await step("threads.get_state new", c.threads.get_state(tid), project_state)
    await step(
        "runs.stream to interrupt",
        collect(
            c.runs.stream(
                tid, "agent", input={"amount": 5}, stream_mode=["values", "updates", "custom"]
            )
        ),
    )
    await step("threads.get interrupted", c.threads.get(tid), project_thread)
    state = await step("threads.get_state interrupted", c.threads.get_state(tid), project_state)
    interrupt_id = state["interrupts"][0]["id"]
    await step(
        "threads.search interrupted",
        c.threads.search(status="interrupted", metadata={"user": "ada"}),
        lambda ts: [project_thread(t) for t in ts],
    )
    bad = await step(
        "resume unknown interrupt id",
        c.runs.create(tid, "agent", command={"resume": {"0" * 32: "yes"}}),
        project_run,
    )
    await step(
        "join after unknown resume", c.runs.join(tid, bad["run_id"]) if bad else anyio.sleep(0)
    )
    await step(
        "runs.wait resume",
        c.runs.wait(tid, "agent", command={"resume": {interrupt_id: "yes"}}),
        project_values,
    )
    await step("threads.get done", c.threads.get(tid), project_thread)
    await step("runs.list", c.runs.list(tid), lambda rs: [r["status"] for r in rs])
    await step(
        "threads.get_history",
        c.threads.get_history(tid, limit=10),
        lambda hs: [project_state(h) for h in hs],
    )
    await step(
        "resume a thread that is not interrupted",
        c.runs.wait(tid, "agent", command={"resume": "yes"}),
        project_values,
    )
    await step(
        "threads.update_state as_node",
        c.threads.update_state(tid, {"decision": "vetoed"}, as_node="approve"),
        lambda r: sorted(r),
    )
    await step("threads.get_state after update", c.threads.get_state(tid), project_state)
    await step("threads.update metadata", c.threads.update(tid, metadata={"k": 1}), project_thread)
    copied = await step("threads.copy", c.threads.copy(tid), lambda t: {"status": t["status"]})
    del copied
    await step(
        "stateless runs.wait", c.runs.wait(None, "agent", input={"amount": 3}), project_values
    )
    busy = (await c.threads.create())["thread_id"]
    slow = await step(
        "runs.create slow", c.runs.create(busy, "slow", input={"steps": 0}), project_run
    )
    await step(
        "runs.create reject while busy",
        c.runs.create(busy, "slow", input={"steps": 0}, multitask_strategy="reject"),
        project_run,
    )
    await step("runs.cancel", c.runs.cancel(busy, slow["run_id"], wait=True))
    await step("runs.get cancelled", c.runs.get(busy, slow["run_id"]), project_run)
    await step(
        "threads.get unknown", c.threads.get("00000000-0000-0000-0000-000000000000"), project_thread
    )
    await step("threads.delete", c.threads.delete(tid))
    await step("threads.get deleted", c.threads.get(tid), project_thread)
    await _store_steps(c, step)
    return steps


async def _store_steps(c: Any, step: Any) -> None:
    """The `/store` calls of `client.store` (search results sorted: LangGraph's in-memory store
    lists in insertion order, the durable stores most recently updated first)."""
    items = lambda found: sorted(  # noqa: E731
        (found["items"]), key=lambda i: (i["namespace"], i["key"])
    )
    await step(
        "store.put_item",
        c.store.put_item(["users", "ada"], key="prefs", value={"tea": True, "n": 1}),
    )
    await step(
        "store.put_item ttl",
        c.store.put_item(["users", "bob", "x"], key="prefs", value={"n": 2}, ttl=60),
    )
    await step("store.get_item", c.store.get_item(["users", "ada"], key="prefs"))
    await step("store.get_item missing", c.store.get_item(["users", "ada"], key="nope"))
    await step("store.search_items", c.store.search_items(["users"]), items)
    await step(
        "store.search_items filter",
        c.store.search_items(["users"], filter={"n": {"$gt": 1}}),
        items,
    )
    await step("store.list_namespaces", c.store.list_namespaces(prefix=["users"]))
    await step(
        "store.list_namespaces max_depth",
        c.store.list_namespaces(prefix=["users"], max_depth=2),
    )
    await step("store.list_namespaces suffix", c.store.list_namespaces(suffix=["x"]))
    await step("store.put_item empty namespace", c.store.put_item([], key="k", value={}))
    await step(
        "store.put_item reserved namespace",
        c.store.put_item(["langgraph"], key="k", value={}),
    )
    await step(
        "store.search_items bad filter",
        c.store.search_items(["users"], filter={"n": {"$bogus": 1}}),
    )
    await step("store.delete_item", c.store.delete_item(["users", "ada"], key="prefs"))
    await step("store.get_item deleted", c.store.get_item(["users", "ada"], key="prefs"))


def project_values(values: Any) -> Any:
    return project_chunk("values", values)


async def write_transcript(
    url: str, script: Callable[[str], Awaitable[list[dict[str, Any]]]]
) -> None:
    """Run `script` against the server at `url`; print its transcript as JSON, with the
    versions it was recorded with."""
    from importlib.metadata import version

    info = httpx.get(f"{url}/info").json()
    transcript = {
        "recorded_with": {
            "server": f"langgraph-api {info.get('version')}",
            "langgraph": info.get("langgraph_py_version"),
            "langgraph-sdk": version("langgraph-sdk"),
        },
        "steps": await script(url),
    }
    json.dump(transcript, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


async def _main(url: str) -> None:
    await write_transcript(url, run_script)


if __name__ == "__main__":
    anyio.run(_main, sys.argv[1])
