"""rss1000: peak resident memory while 1000 threads are started concurrently and left paused.

Each measurement runs in a fresh interpreter (`python -m benchmarks.rss ...`) so earlier
workloads cannot pollute it: imports, the store and the graph are set up and warmed first, that
RSS is the baseline, then N threads are started at once to an `interrupt()`. RSS is sampled every
5 ms (psutil) until they are all paused; the headline is the peak above the baseline, in MB.
All N start results are asserted, and 10 of the threads are then resumed and asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from benchmarks.stores import Servers, open_store
from benchmarks.workloads import (
    Result,
    RunFailed,
    approval_graph,
    concurrently,
    describe_error,
    hitl_engine,
    resume_thread,
    start_thread,
)

MB = 1024 * 1024


async def _measure(engine_name: str, driver: str, threads: int, servers: Servers) -> Result:
    import psutil

    from benchmarks.workloads import langgraph_engine

    engine = hitl_engine() if engine_name == "hitl-async" else langgraph_engine()
    assert engine is not None, "LangGraph is not installed"
    proc = psutil.Process()
    async with open_store(engine.name, driver, servers) as store:
        graph = approval_graph(engine, store.saver)
        for i in range(5):  # warm: lazy imports, connections, prepared statements
            await start_thread(graph, f"warm{i}", -1)
            await resume_thread(graph, engine, f"warm{i}", -1)
        gc.collect()
        baseline = proc.memory_info().rss
        peak = baseline
        done = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, proc.memory_info().rss)
                await asyncio.sleep(0.005)

        sampler = asyncio.create_task(sample())
        try:
            elapsed = await concurrently(lambda i: start_thread(graph, f"p{i}", i), threads)
        finally:
            done.set()
            await sampler
        peak = max(peak, proc.memory_info().rss)
        for i in range(min(10, threads)):
            await resume_thread(graph, engine, f"p{i}", i)
    delta = (peak - baseline) / MB
    return Result(
        delta,
        "MB",
        {
            "baseline_mb": baseline / MB,
            "peak_mb": peak / MB,
            "kb_per_thread": delta * 1024 / threads,
            "start_s": elapsed,
        },
    )


def run_subprocess(
    engine: str, driver: str, threads: int, servers: Servers, timeout: float
) -> Result:
    """Run one measurement in a fresh interpreter; raise with its stderr when it fails."""
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.rss",
        "--engine",
        engine,
        "--driver",
        driver,
        "--threads",
        str(threads),
        "--postgres-url",
        servers.postgres,
        "--redis-url",
        servers.redis,
    ]
    if servers.langgraph_redis_pool is not None:
        cmd += ["--langgraph-redis-pool", str(servers.langgraph_redis_pool)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RunFailed(f"timed out after {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        raise RunFailed(lines[-1] if lines else f"exit code {done.returncode}")
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(**data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one rss1000 measurement (prints JSON)")
    parser.add_argument("--engine", required=True, choices=["hitl-async", "langgraph"])
    parser.add_argument("--driver", required=True)
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--postgres-url", default=Servers().postgres)
    parser.add_argument("--redis-url", default=Servers().redis)
    parser.add_argument("--langgraph-redis-pool", type=int, default=None)
    args = parser.parse_args(argv)
    servers = Servers(args.postgres_url, args.redis_url, args.langgraph_redis_pool)
    try:
        result = asyncio.run(_measure(args.engine, args.driver, args.threads, servers))
    except Exception as exc:
        print(describe_error(exc), file=sys.stderr)  # the last line is the reason reported
        return 1
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
