"""Distributed threads, with real processes on every shared store (sqlite, postgres, redis):
one writer per thread, answers used once, crash recovery, the run queue, the inbox, deadlines."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from apps.distributed_app import approval_graph, pair_graph
from apps.stores import SharedStore

from hitl_async import Command, RunHandle

pytestmark = pytest.mark.anyio

TESTS = Path(__file__).resolve().parent


def spawn(store: SharedStore, effects: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """Start a role of tests/apps/distributed_app.py in its own process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "apps.distributed_app",
            *args,
            "--store",
            store.url,
            "--options",
            json.dumps(store.options),
        ],
        cwd=TESTS,
        env={**os.environ, "PYTHONPATH": str(TESTS), "HITL_EFFECTS": str(effects), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def lines(effects: Path) -> list[str]:
    return effects.read_text().splitlines() if effects.exists() else []


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.05)


async def test_eight_processes_resume_one_thread_exactly_one_wins(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    os.environ["HITL_EFFECTS"] = str(effects)
    graph = approval_graph(shared_store.url, shared_store.options)
    cfg = {"configurable": {"thread_id": "contested"}}
    paused = await graph.ainvoke({"request": "contested"}, cfg)
    assert paused["__interrupt__"]
    at = time.time() + 3.0
    procs = [
        spawn(
            shared_store,
            effects,
            "resume",
            "--thread",
            "contested",
            "--answer",
            f"yes{i}",
            "--at",
            str(at),
        )
        for i in range(8)
    ]
    results = [finish(p) for p in procs]
    winners = [r for r in results if r["ok"]]
    assert len(winners) == 1, results
    losers = {r["error"] for r in results if not r["ok"]}
    assert losers <= {"ThreadBusyError", "NoPendingInterruptError", "UnknownInterruptError"}
    assert len([e for e in lines(effects) if e.startswith("act:")]) == 1
    history = [s async for s in graph.aget_state_history(cfg)]
    for newer, older in itertools.pairwise(history):
        assert newer.parent_config is not None
        assert (
            newer.parent_config["configurable"]["checkpoint_id"]
            == (older.config["configurable"]["checkpoint_id"])
        ), "history forked"
    final = await graph.aget_state(cfg)
    assert final.values["done"] == winners[0]["done"]
    await graph.checkpointer.aclose()


async def test_killed_worker_is_recovered_and_finished_task_runs_once(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    graph = pair_graph(shared_store.url, shared_store.options)
    handle = await graph.asubmit({"log": []}, {"configurable": {"thread_id": "crash"}})
    first = spawn(shared_store, effects, "worker", "--graph", "pair", HITL_SLOW="60")
    await wait_until(lambda: "fast" in lines(effects), 30, "the fast task to finish")
    await anyio.sleep(0.3)  # let the fast task's pending write land
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    second = spawn(shared_store, effects, "worker", "--graph", "pair", HITL_SLOW="0")
    try:
        result = await handle.result(timeout=45)
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=10)
    assert sorted(result["log"]) == ["fast", "slow"]
    assert lines(effects).count("fast") == 1
    assert lines(effects).count("slow") == 1
    await graph.checkpointer.aclose()


async def test_resume_submitted_in_one_process_runs_in_a_worker_in_another(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    os.environ["HITL_EFFECTS"] = str(effects)
    graph = approval_graph(shared_store.url, shared_store.options)
    cfg = {"configurable": {"thread_id": "remote"}}
    await graph.ainvoke({"request": "remote"}, cfg)
    submitted = finish(
        spawn(shared_store, effects, "submit", "--thread", "remote", "--answer", "approved")
    )
    worker = spawn(shared_store, effects, "worker", "--max-requests", "1")
    try:
        handle = RunHandle(submitted["request_id"], "remote", graph.checkpointer, graph.serde)
        result = await handle.result(timeout=45)
    finally:
        worker.communicate(timeout=30)
    assert result["done"] == "remote=approved"
    assert lines(effects) == ["act:remote:approved"]
    await graph.checkpointer.aclose()


async def test_inbox_lists_exactly_the_unanswered_half(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    os.environ["HITL_EFFECTS"] = str(tmp_path / "effects")
    graph = approval_graph(shared_store.url, shared_store.options)
    limiter = anyio.Semaphore(20)

    async def start(i: int) -> None:
        async with limiter:
            await graph.ainvoke({"request": f"r{i}"}, {"configurable": {"thread_id": f"t{i:04d}"}})

    async def answer(i: int) -> None:
        async with limiter:
            await graph.ainvoke(Command(resume="ok"), {"configurable": {"thread_id": f"t{i:04d}"}})

    async with anyio.create_task_group() as tg:
        for i in range(1000):
            tg.start_soon(start, i)
    async with anyio.create_task_group() as tg:
        for i in range(0, 1000, 2):
            tg.start_soon(answer, i)
    seen: list[str] = []
    after = None
    while True:
        page = await graph.ainbox(limit=128, after=after)
        if not page:
            break
        seen += [p.thread_id for p in page]
        after = page[-1].cursor
    assert sorted(seen) == [f"t{i:04d}" for i in range(1, 1000, 2)]
    assert len(set(seen)) == 500
    sample = await graph.ainbox(thread_id="t0001")
    assert [p.value for p in sample] == [{"approve": "r1"}]
    await graph.checkpointer.aclose()


async def test_deadline_answers_with_on_timeout_through_a_running_worker(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    os.environ["HITL_EFFECTS"] = str(effects)
    os.environ["HITL_DEADLINE"] = "1"
    try:
        graph = approval_graph(shared_store.url, shared_store.options)
        cfg = {"configurable": {"thread_id": "late"}}
        await graph.ainvoke({"request": "late"}, cfg)
    finally:
        del os.environ["HITL_DEADLINE"]
    (pending,) = await graph.ainbox()
    assert pending.deadline is not None and pending.deadline > time.time() - 1
    worker = spawn(shared_store, effects, "worker", "--seconds", "30")
    try:
        snapshot = await graph.await_for(cfg, until="done", timeout=30)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=10)
    assert snapshot.values["answer"] == "auto-no"
    assert lines(effects) == ["act:late:auto-no"]
    assert await graph.ainbox() == []
    await graph.checkpointer.aclose()
