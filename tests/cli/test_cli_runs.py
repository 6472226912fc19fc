"""`hitl runs`: the run queue as an operator sees it, on every store with a queue. A poison
request (queued for another graph) and a quarantined one (its earlier workers all died) are
visible with their reason after `hitl worker` processed them, next to a healthy one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
from test_cli import APP, TESTS, Store, fails, ok, ok_json
from test_cli import store as store  # the fixture: a fresh SQLite, PostgreSQL or Redis store


def _graphs() -> tuple[Any, Any]:
    sys.path.insert(0, str(TESTS))
    try:
        from apps.cli_app import make_builder, make_graph
    finally:
        sys.path.remove(str(TESTS))
    return make_graph(), make_builder().compile(name="other")


async def _queue(store: Store) -> dict[str, str]:
    """Three requests on the queue `expenses`: one whose three earlier workers died (claims
    that expired), one queued for another graph, one healthy; their ids by role."""
    expenses, other = _graphs()
    saver = store.connect()
    try:
        graph = expenses.with_checkpointer(saver)
        item = {"item": "chair", "amount": 80}
        crashy = await graph.asubmit(item, {"configurable": {"thread_id": "crashy"}})
        for i in range(3):  # three workers took it and died: their claims expired
            claimed = await saver.claim_request("expenses", f"dead-{i}", 0.05)
            assert claimed is not None and claimed.id == crashy.id
            await anyio.sleep(0.15)
        poison = await other.with_checkpointer(saver).asubmit(
            item, {"configurable": {"thread_id": "wrong"}}, queue="expenses"
        )
        await anyio.sleep(0.01)  # (distinct creation times: newest first is well defined)
        good = await graph.asubmit(item, {"configurable": {"thread_id": "fine"}})
        return {"crashy": crashy.id, "poison": poison.id, "good": good.id}
    finally:
        await saver.aclose()


def test_runs_shows_failed_and_quarantined_requests(store: Store, tmp_path: Path) -> None:
    s = store.flags
    ids = anyio.run(_queue, store)
    before = ok_json("runs", *s, cwd=tmp_path)
    assert [r["state"] for r in before] == ["queued", "queued", "running"]
    assert before[2]["owner"] == "dead-2" and "claim expired" in before[2]["claim"]

    out = ok(
        "worker", f"{APP}:make_graph", "--max-requests", "3", "--max-attempts", "2",
        "--poll", "0.2", "--json", *s, cwd=tmp_path,
    )  # fmt: skip
    served = {line["request_id"]: line["status"] for line in map(json.loads, out.splitlines())}
    assert served == {ids["crashy"]: "quarantined", ids["poison"]: "failed", ids["good"]: "paused"}

    listed = ok_json("runs", *s, cwd=tmp_path)
    assert [r["id"] for r in listed] == [ids["good"], ids["poison"], ids["crashy"]]
    by_id = {r["id"]: r for r in listed}
    crashy, poison, good = by_id[ids["crashy"]], by_id[ids["poison"]], by_id[ids["good"]]
    assert (crashy["status"], crashy["state"], crashy["attempts"]) == ("failed", "quarantined", 4)
    assert crashy["error"].startswith("quarantined after 3 attempts")
    assert (poison["state"], poison["thread_id"]) == ("failed", "wrong")
    assert "submitted for graph 'other'" in poison["error"]
    assert (good["state"], good["error"], good["attempts"]) == ("done", None, 1)
    assert good["owner"] and good["owner"] == poison["owner"]  # the worker that ran them

    failed = ok_json("runs", "--status", "failed", *s, cwd=tmp_path)
    assert [r["id"] for r in failed] == [ids["poison"], ids["crashy"]]
    assert [r["id"] for r in ok_json("runs", "-t", "crashy", *s, cwd=tmp_path)] == [ids["crashy"]]
    assert ok_json("runs", "--queue", "nowhere", *s, cwd=tmp_path) == []
    [first] = ok_json("runs", "--limit", "1", *s, cwd=tmp_path)
    rest = ok_json("runs", "--before", first["cursor"], *s, cwd=tmp_path)
    assert [r["id"] for r in rest] == [ids["poison"], ids["crashy"]]

    table = ok("runs", *s, cwd=tmp_path)
    assert "quarantined" in table and "submitted for graph 'other'" in table
    assert "more: --before" in ok("runs", "--limit", "1", *s, cwd=tmp_path)

    shown = ok("runs", "show", ids["crashy"], *s, cwd=tmp_path)
    assert "quarantined after 3 attempts" in shown and "crashy" in shown
    detail = ok_json("runs", "show", ids["good"], *s, cwd=tmp_path)
    assert detail["request"]["input"] == {"item": "chair", "amount": 80}
    assert detail["state"] == "done" and "__interrupt__" in detail["result"]

    assert "not found" in fails(3, "runs", "show", "nope", *s, cwd=tmp_path)
    assert "--status expects one of" in fails(2, "runs", "--status", "bogus", *s, cwd=tmp_path)
    assert "--before" in fails(2, "runs", "--before", "[1]", *s, cwd=tmp_path)
