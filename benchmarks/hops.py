"""`python -m benchmarks.hops`: what one call of a trivial sync function costs by each way an
event loop can run it (the measurement behind how hitl-async runs `def` nodes; issue #16).

- `anyio.to_thread.run_sync` (what every `def` node paid before);
- `loop.run_in_executor(None, ...)` (asyncio's default thread pool);
- a worker thread of our own: one `SimpleQueue.put`, one `call_soon_threadsafe` back
  (`hitl_async._workers`, the async API);
- stopping the loop and calling it in the loop's own thread, then running the loop again
  (`hitl_async._sync.Driver.call`, the sync API);
- a direct call in a copy of the context (the lower bound).

Medians of 5 rounds of 3000 calls each, in µs per call.
"""

from __future__ import annotations

import asyncio
import contextvars
import statistics
import sys
import time
from collections.abc import Callable

import anyio.to_thread

CALLS = 3000


def node(x: int) -> int:
    return x + 1


async def _to_thread() -> float:
    t0 = time.perf_counter()
    for i in range(CALLS):
        await anyio.to_thread.run_sync(node, i)
    return (time.perf_counter() - t0) / CALLS * 1e6


async def _executor() -> float:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    for i in range(CALLS):
        await loop.run_in_executor(None, node, i)
    return (time.perf_counter() - t0) / CALLS * 1e6


async def _own_worker() -> float:
    from functools import partial

    from hitl_async._workers import run_sync

    t0 = time.perf_counter()
    for i in range(CALLS):
        await run_sync(partial(node, i))
    return (time.perf_counter() - t0) / CALLS * 1e6


async def _direct() -> float:
    t0 = time.perf_counter()
    for i in range(CALLS):
        contextvars.copy_context().run(node, i)
    return (time.perf_counter() - t0) / CALLS * 1e6


def _paused_loop() -> float:
    from functools import partial

    from hitl_async._sync import Driver

    driver = Driver()

    async def chain() -> float:
        t0 = time.perf_counter()
        for i in range(CALLS):
            await driver.call(partial(node, i))
        return (time.perf_counter() - t0) / CALLS * 1e6

    try:
        return driver.run(chain)
    finally:
        driver.loop.close()


def main() -> int:
    ways: dict[str, Callable[[], float]] = {
        "anyio.to_thread.run_sync": lambda: asyncio.run(_to_thread()),
        "loop.run_in_executor": lambda: asyncio.run(_executor()),
        "own worker thread (_workers)": lambda: asyncio.run(_own_worker()),
        "paused loop, same thread (Driver.call)": _paused_loop,
        "direct call": lambda: asyncio.run(_direct()),
    }
    rounds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(5):  # interleaved, so a noisy neighbour hits every way alike
        for name, way in ways.items():
            rounds[name].append(way())
    for name, samples in rounds.items():
        print(f"{name:42} {statistics.median(samples):8.2f} µs/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
