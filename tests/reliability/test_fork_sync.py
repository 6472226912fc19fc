"""Forked children work through the sync API after the parent used it, on every driver.

gunicorn `--preload`, Celery's prefork pool and multiprocessing's default `fork` start method
fork after the app was imported and, often, used. Here the parent uses a graph through the sync
API first (`invoke`, `get_state`, `submit`: its sync portal thread, lease keeper and driver
pools are live at the fork); then children forked with the `fork` start method call the same
graph object through the sync API. Eight children racing one resume with
`graph.invoke(Command(resume=...))` give one winner, one side effect and no forked history; a
child whose node outlives `lease_ttl` keeps its lease renewed (a run elsewhere cannot take the
thread meanwhile); none hangs, and the parent's sync API works on afterwards.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apps.forking import dumps_stacks, kill_dumping
from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service
from apps.stores import SharedStore
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    Command,
    ResumeError,
    StateGraph,
    ThreadBusyError,
    interrupt,
)

FORK = multiprocessing.get_context("fork")
CHILDREN = 8
TIMEOUT = 60.0  # for all children together: a hung child fails the test, never the suite
LEASE_TTL = 3.0  # with 1 s, two loaded test processes once let the lease lapse before a renewal
SLEEP = 3.0  # the long node, in lease ttls: past what SQLite's take-over needs (two ttls)
PROBES = 5  # attempts to take the long node's thread, every half ttl (all while it sleeps)
WON, LOST, FAILED = 0, 3, 4


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SharedStore]:
    """A store of each shared driver (a sync fixture: these tests fork from sync code)."""
    kind = request.param
    if kind == "sqlite":
        require_package("hitl_async_sqlite", "drivers/sqlite")
        store = SharedStore(kind, f"sqlite:///{tmp_path / 'fork.db'}", {})
    elif kind == "postgres":
        require_package("hitl_async_postgres", "drivers/postgres")
        require_service("postgres", POSTGRES_URL)
        store = SharedStore(kind, POSTGRES_URL, {"schema": f"t_{uuid.uuid4().hex[:12]}"})
    else:
        require_package("hitl_async_redis", "drivers/redis")
        require_service("redis", REDIS_URL)
        store = SharedStore(kind, REDIS_URL, {"prefix": f"t{uuid.uuid4().hex[:12]}"})
    yield store

    async def cleanup() -> None:
        saver = store.connect()
        await saver.destroy()
        await saver.aclose()

    asyncio.run(cleanup())


class State(TypedDict, total=False):
    answer: str
    slept: float


_GRAPH: Any = None  # what the children inherit
_EFFECTS: Path | None = None


def _build(saver: Any, effects: Path) -> Any:
    def ask(state: State) -> dict[str, Any]:
        answer = interrupt("ok?")
        with open(effects, "a") as f:  # the side effect: one line per execution
            f.write(f"{answer}\n")
        return {"answer": answer}

    async def slow(state: State) -> dict[str, Any]:
        started = time.monotonic()
        effects.with_suffix(".started").touch()  # the run holds the thread's lease now
        await asyncio.sleep(LEASE_TTL * SLEEP)  # outlives the lease: only renewal keeps it
        return {"slept": time.monotonic() - started}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_node("slow", slow)
    builder.add_conditional_edges(START, lambda s: "slow" if "slept" in s else "ask")
    builder.add_edge("ask", END)
    builder.add_edge("slow", END)
    return builder.compile(checkpointer=saver, name="forked-sync", lease_ttl=LEASE_TTL)


def _in_child(body: Callable[[], int]) -> None:
    """Run `body` in a forked child and leave with its code (FAILED on anything unexpected);
    `os._exit` so nothing inherited from the parent runs at exit."""
    dumps_stacks()
    try:
        code = body()
    except BaseException:
        traceback.print_exc()
        code = FAILED
    os._exit(code)


def _fork_all(target: Callable[..., None], count: int) -> list[int | None]:
    children = [FORK.Process(target=target, args=(i,)) for i in range(count)]
    for child in children:
        child.start()
    deadline = time.monotonic() + TIMEOUT
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
    codes = [child.exitcode for child in children]
    for child in children:
        if child.is_alive():
            kill_dumping(child)
    return codes


def _parent_uses_the_sync_api(graph: Any) -> None:
    """invoke (paused on an interrupt), get_state, submit: the sync portal, the lease keeper
    and the driver's pools are live when the children fork."""
    race = {"configurable": {"thread_id": "race"}}
    graph.invoke({"answer": ""}, race)
    assert graph.get_state(race).interrupts
    graph.submit({"answer": ""}, {"configurable": {"thread_id": "queued"}})


def _child_resumes(i: int) -> None:
    def body() -> int:
        try:
            _GRAPH.invoke(Command(resume=f"child-{i}"), {"configurable": {"thread_id": "race"}})
        except (ThreadBusyError, ResumeError):
            return LOST
        return WON

    _in_child(body)


def test_eight_forked_children_racing_one_resume_through_the_sync_api(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    global _GRAPH
    saver = shared_store.connect()
    effects = tmp_path / "effects.txt"
    _GRAPH = graph = _build(saver, effects)
    _parent_uses_the_sync_api(graph)

    codes = _fork_all(_child_resumes, CHILDREN)

    assert None not in codes, f"a child hung: {codes}"
    assert sorted(codes) == [WON] + [LOST] * (CHILDREN - 1), codes
    winners = effects.read_text().splitlines()
    assert len(winners) == 1  # one side effect
    cfg = {"configurable": {"thread_id": "race"}}
    state = graph.get_state(cfg)  # the parent's sync API works on
    assert state.values == {"answer": winners[0]} and not state.next
    history = list(graph.get_state_history(cfg))
    ids = [s.config["configurable"]["checkpoint_id"] for s in history]
    parents = [s.parent_config["configurable"]["checkpoint_id"] for s in history[:-1]]
    assert parents == ids[1:]  # one linear chain: no forked history


def _child_runs_a_long_node(i: int) -> None:
    def body() -> int:
        out = _GRAPH.invoke({"slept": 0.0}, {"configurable": {"thread_id": f"slow-{i}"}})
        return WON if out["slept"] >= LEASE_TTL * SLEEP else FAILED

    _in_child(body)


def test_a_forked_child_keeps_its_lease_renewed_through_a_long_node(
    shared_store: SharedStore, tmp_path: Path
) -> None:
    global _GRAPH
    _GRAPH = graph = _build(shared_store.connect(), tmp_path / "effects.txt")
    started = tmp_path / "effects.started"
    _parent_uses_the_sync_api(graph)
    child = FORK.Process(target=_child_runs_a_long_node, args=(0,))
    child.start()

    async def try_to_take_over() -> list[str]:
        """Another process's attempts to take the child's thread while its node sleeps."""
        other = shared_store.connect()
        outcomes: list[str] = []
        try:
            deadline = time.monotonic() + TIMEOUT
            while not started.exists() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            for _ in range(PROBES):  # unrenewed, the lease would be taken within these
                await asyncio.sleep(LEASE_TTL * 0.5)
                try:
                    await other.acquire_lease("slow-0", "thief", 30)
                    outcomes.append("taken")
                    break
                except ThreadBusyError:
                    outcomes.append("busy")
        finally:
            await other.aclose()
        return outcomes

    outcomes = asyncio.run(try_to_take_over())
    child.join(TIMEOUT)
    code = child.exitcode
    if child.is_alive():
        child.kill()
    assert outcomes == ["busy"] * PROBES, outcomes  # the child's lease stayed renewed
    assert code == WON, f"child exit code {code} (None: it hung)"
    slept = graph.get_state({"configurable": {"thread_id": "slow-0"}}).values["slept"]
    assert slept >= LEASE_TTL * SLEEP
