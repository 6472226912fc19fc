"""`python -m benchmarks --server`: `hitl serve` against `langgraph dev`, through the same
client library (langgraph-sdk) on the same graphs (benchmarks/serve/).

    python -m benchmarks --server               # hitl serve (SQLite, PostgreSQL), langgraph dev
    python -m benchmarks --server --quick                 # fewer samples
    python -m benchmarks --server --langgraph-cli PATH    # the `langgraph` command to run

Workloads, each on a fresh store and a fresh server process:
- wait latency: `runs.wait` of a 3-node chain, one at a time (median and p90, ms);
- first event: `runs.stream` of the chain until its first `values` event (median, ms);
- 100 threads: N threads streamed to the approval's `interrupt()` at once, then all resumed
  at once with `runs.wait` (2N runs / elapsed s), every final state checked; with the server's
  CPU time per run (its processes' user + system time over the workload / 2N, ms), a figure
  that other jobs on a shared machine disturb far less than the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent / "serve"
DEFAULT_OUT = Path(__file__).parent / "results"
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Target:
    """A server to measure: how to start it and what to call it."""

    name: str
    args: list[str]
    cwd: Path
    store: str | None = None
    results: dict[str, Any] = field(default_factory=dict)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _running(target: Target, port: int, log: Path) -> Iterator[tuple[str, int]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HITL_STORE", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*target.args, "--port", str(port)],
            cwd=target.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{target.name} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{target.name} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


async def _wait_latency(url: str, samples: int) -> dict[str, float]:
    from langgraph_sdk import get_client

    client = get_client(url=url)
    times = []
    for i in range(samples + 3):
        tid = (await client.threads.create())["thread_id"]
        t0 = time.perf_counter()
        out = await client.runs.wait(tid, "chain3", input={"n": 0})
        elapsed = (time.perf_counter() - t0) * 1000
        assert out == {"n": 3}, out
        if i >= 3:  # warm-up
            times.append(elapsed)
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(len(times) * 0.9) - 1]}


async def _first_event(url: str, samples: int) -> dict[str, float]:
    from langgraph_sdk import get_client

    client = get_client(url=url)
    times = []
    for i in range(samples + 3):
        tid = (await client.threads.create())["thread_id"]
        t0 = time.perf_counter()
        first = None
        async for part in client.runs.stream(tid, "chain3", input={"n": 0}, stream_mode="values"):
            if part.event == "values" and first is None:
                first = (time.perf_counter() - t0) * 1000
        assert first is not None
        if i >= 3:
            times.append(first)
    return {"median_ms": statistics.median(times)}


async def _threads(url: str, count: int) -> dict[str, float]:
    from langgraph_sdk import get_client

    client = get_client(url=url, timeout=httpx.Timeout(300.0))
    tids = [(await client.threads.create())["thread_id"] for _ in range(count)]
    pending: dict[str, str] = {}

    async def start(tid: str) -> None:
        async for part in client.runs.stream(
            tid, "approval", input={"n": 0}, stream_mode="updates"
        ):
            if part.event == "updates" and "__interrupt__" in part.data:
                pending[tid] = part.data["__interrupt__"][0]["id"]

    async def resume(tid: str) -> None:
        out = await client.runs.wait(tid, "approval", command={"resume": {pending[tid]: "ok"}})
        assert out == {"n": 2, "decision": "ok"}, out

    t0 = time.perf_counter()
    await asyncio.gather(*(start(t) for t in tids))
    assert len(pending) == count, f"{count - len(pending)} threads did not pause"
    await asyncio.gather(*(resume(t) for t in tids))
    elapsed = time.perf_counter() - t0
    return {"runs_per_s": 2 * count / elapsed, "seconds": elapsed}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process `pid` and its descendants (langgraph dev runs
    its server in a child)."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _targets(args: argparse.Namespace, tmp: Path) -> list[Target]:
    hitl = [
        sys.executable,
        "-m",
        "hitl_async.cli",
        "serve",
        "--config",
        str(HERE / "langgraph.json"),
        "--workers",
        str(args.workers),
    ]
    targets = []
    if "sqlite" in args.stores:
        targets.append(
            Target("hitl serve (sqlite)", [*hitl, "--store", f"sqlite:///{tmp / 'bench.db'}"], HERE)
        )
    if "postgres" in args.stores:
        schema = f"bench_srv_{uuid.uuid4().hex[:10]}"
        sep = "&" if "?" in args.postgres_url else "?"
        store = f"{args.postgres_url}{sep}schema={schema}"
        targets.append(Target("hitl serve (postgres)", [*hitl, "--store", store], HERE, store))
    cli = args.langgraph_cli or shutil.which("langgraph")
    if cli and not args.no_langgraph:
        targets.append(
            Target(
                "langgraph dev (in-memory)",
                [
                    cli,
                    "dev",
                    "--config",
                    "langgraph_langgraph.json",
                    "--no-browser",
                    "--no-reload",
                    "--host",
                    "127.0.0.1",
                ],
                HERE,
            )
        )
    return targets


def _drop(store: str | None) -> None:
    if store is None or not store.startswith("postgres"):
        return
    import anyio

    from hitl_async import connect
    from hitl_async.server.records import open_records

    async def drop() -> None:
        records, saver = open_records(store), connect(store)
        try:
            await records.destroy()
            await saver.destroy()
        finally:
            await records.aclose()
            await saver.aclose()

    anyio.run(drop)


def _table(targets: list[Target], threads: int) -> str:
    lines = [
        f"| server | runs.wait median (p90), ms | first event median, ms | {threads} threads "
        "streamed + resumed, runs/s | server CPU per run, ms |",
        "|---|---|---|---|---|",
    ]
    for t in targets:
        r = t.results
        if "error" in r:
            lines.append(f"| {t.name} | failed: {r['error']} | | | |")
            continue
        lines.append(
            f"| {t.name} | {r['wait']['median_ms']:.1f} ({r['wait']['p90_ms']:.1f}) | "
            f"{r['first']['median_ms']:.1f} | {r['threads']['runs_per_s']:.0f} | "
            f"{r['threads']['server_cpu_ms_per_run']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks --server")
    parser.add_argument("--server", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=16, help="hitl serve --workers")
    parser.add_argument("--postgres-url", default=POSTGRES)
    parser.add_argument("--langgraph-cli", default=None)
    parser.add_argument("--no-langgraph", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    samples = args.samples or (10 if args.quick else 50)
    threads = args.threads or (20 if args.quick else 100)
    with tempfile.TemporaryDirectory() as tmp:
        targets = _targets(args, Path(tmp))
        for target in targets:
            print(f"measuring {target.name} ...", flush=True)
            try:
                with _running(target, _free_port(), Path(tmp) / "server.log") as (url, pid):
                    target.results["wait"] = asyncio.run(_wait_latency(url, samples))
                    target.results["first"] = asyncio.run(_first_event(url, samples))
                    before = _cpu_seconds(pid)
                    target.results["threads"] = asyncio.run(_threads(url, threads))
                    used = _cpu_seconds(pid) - before
                    target.results["threads"]["server_cpu_ms_per_run"] = used * 1000 / (2 * threads)
            except Exception as exc:
                target.results["error"] = f"{type(exc).__name__}: {exc}"[:300]
            finally:
                _drop(target.store)
    table = _table(targets, threads)
    table += f"\n\n(load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server.md").write_text(table + "\n")
    (args.out / "server.json").write_text(
        json.dumps(
            {
                "samples": samples,
                "threads": threads,
                "results": {t.name: t.results for t in targets},
            },
            indent=1,
        )
    )
    return 1 if any("error" in t.results for t in targets if t.name.startswith("hitl")) else 0
