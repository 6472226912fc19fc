"""`TaskFuture`, what calling a `@task` returns, has the future methods LangGraph 1.2.22's task
calls have (a `concurrent.futures.Future` in a sync entrypoint, an asyncio one in an async
entrypoint): `done`, `cancel`, `cancelled`, `result(timeout)`, `exception`,
`add_done_callback`. Observed on LangGraph with the same entrypoints; restated here."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import CancelledError
from typing import Any

import anyio
import pytest

from hitl_async import InMemorySaver
from hitl_async.func import entrypoint, task


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def test_a_sync_call_cancelled_before_it_finishes() -> None:
    """LangGraph: `cancel()` of an unfinished call answers True, the future is then done and
    cancelled and `result()` raises CancelledError; a sync body already in its thread still
    runs to its end (LangGraph's too). A finished call cannot be cancelled."""
    release = threading.Event()
    ran: list[str] = []

    @task
    def slow(name: str) -> str:
        release.wait(5)
        ran.append(name)
        return name

    @task
    def quick(name: str) -> str:
        ran.append(name)
        return name

    @entrypoint(checkpointer=InMemorySaver())
    def workflow(_: Any) -> dict[str, Any]:
        pending = slow("slow")
        seen: list[Any] = []
        pending.add_done_callback(seen.append)
        assert not pending.done() and not pending.cancelled()
        assert pending.cancel() is True
        release.set()
        with pytest.raises(CancelledError):
            pending.result()
        with pytest.raises(CancelledError):
            pending.exception()
        finished = quick("quick")
        value = finished.result(timeout=5)
        return {
            "cancelled": (pending.done(), pending.cancelled(), seen == [pending]),
            "finished": (value, finished.done(), finished.cancel(), finished.cancelled()),
            "exception": finished.exception(),
        }

    assert workflow.invoke(1, cfg()) == {
        "cancelled": (True, True, True),
        "finished": ("quick", True, False, False),
        "exception": None,
    }
    deadline = time.monotonic() + 5
    while len(ran) < 2 and time.monotonic() < deadline:  # the slow body ends on its own
        time.sleep(0.01)
    assert sorted(ran) == ["quick", "slow"]


@pytest.mark.anyio
async def test_an_async_call_cancelled_stops_its_body() -> None:
    """LangGraph: an async task call cancelled before it ends never finishes its body; awaiting
    it raises CancelledError (here `concurrent.futures.CancelledError`, an `Exception`, so it
    cannot pass for the cancellation of the entrypoint itself)."""
    ran: list[str] = []
    started = anyio.Event()

    @task
    async def sleepy(name: str) -> str:
        started.set()
        await anyio.sleep(5)
        ran.append(name)
        return name

    @task
    async def quick(name: str) -> str:
        ran.append(name)
        return name

    @entrypoint(checkpointer=InMemorySaver())
    async def workflow(_: Any) -> dict[str, Any]:
        never_started = sleepy("never started")
        assert never_started.cancel() is True
        running = sleepy("running")
        await started.wait()
        assert running.cancel() is True and running.cancelled()
        failures = []
        for cancelled in (never_started, running):
            try:
                await cancelled
            except CancelledError:
                failures.append("CancelledError")
        value = await quick("quick")
        return {"failures": failures, "value": value}

    with anyio.fail_after(10):
        assert await workflow.ainvoke(1, cfg()) == {
            "failures": ["CancelledError", "CancelledError"],
            "value": "quick",
        }
    assert ran == ["quick"]


def test_a_result_that_takes_too_long_times_out() -> None:
    release = threading.Event()

    @task
    def slow() -> str:
        release.wait(5)
        return "late"

    @entrypoint(checkpointer=InMemorySaver())
    def workflow(_: Any) -> str:
        pending = slow()
        with pytest.raises(TimeoutError):
            pending.result(timeout=0.01)
        release.set()
        return pending.result()

    assert workflow.invoke(1, cfg()) == "late"
