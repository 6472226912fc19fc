"""drain: worker processes draining a run queue of resumes (hitl-async only: LangGraph has none).

1. prepare (not timed in the headline): N threads are started concurrently, in this process, to
   an `interrupt()`;
2. enqueue (timed separately): N `graph.asubmit(Command(resume=...), config)` requests, one per
   thread, submitted concurrently;
3. W worker processes (`python -m benchmarks.drain_worker`, each a `hitl_async.Worker`) start,
   connect and warm up, then report ready (their start-up is timed separately as "spawn");
4. drain (the headline): from the moment every worker is told to go until every request is
   observed `done`, polled through the saver in submission order. Throughput = N ÷ that time.

Then, untimed, every request must be `done`, claimed exactly once (`attempts == 1`) with the
expected result, and every thread's final state must be right: its own answer, and the
after-interrupt node run exactly once, by one of the worker processes (it records its pid).

Worker processes are always stopped (stdin "stop", then SIGTERM, then SIGKILL) before the store
is removed, whatever happened. The graph is built by `drain_graph` here, imported by both sides,
so the parent and the workers agree on its nodes and its name (which is the queue's name).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

from typing_extensions import TypedDict

from benchmarks.stores import Store
from benchmarks.workloads import Engine, Result, RunFailed, Sizes, concurrently

GRAPH_NAME = "bench-drain"
ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 60.0
STOP_GRACE = 10.0
POLL = 0.005


class DrainState(TypedDict):
    n: int
    answer: str
    acted: Annotated[list[int], operator.add]


def drain_graph(saver: Any) -> Any:
    """START -> ask (pauses on `interrupt({"n": n})`, keeps the answer) -> act (records the pid
    of the process that ran it) -> END, named `GRAPH_NAME`."""
    import hitl_async

    async def ask(state: DrainState) -> dict[str, Any]:
        answer = hitl_async.interrupt({"n": state["n"]})
        return {"answer": answer}

    async def act(state: DrainState) -> dict[str, Any]:
        return {"acted": [os.getpid()]}

    builder = hitl_async.StateGraph(DrainState)
    builder.add_node("ask", ask)
    builder.add_node("act", act)
    builder.add_edge(hitl_async.START, "ask")
    builder.add_edge("ask", "act")
    builder.add_edge("act", hitl_async.END)
    return builder.compile(checkpointer=saver, name=GRAPH_NAME)


def _cfg(n: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"d{n}"}}


def _answer(n: int) -> str:
    return f"r{n}"


async def _start(graph: Any, n: int) -> None:
    out = await graph.ainvoke({"n": n, "answer": "", "acted": []}, _cfg(n))
    interrupts = out.get("__interrupt__") if isinstance(out, dict) else None
    assert interrupts and interrupts[0].value == {"n": n}, out


# -- worker processes ----------------------------------------------------------------------------


class _Workers:
    """W `benchmarks.drain_worker` processes on one store; `stop()` always ends them all."""

    def __init__(self, store: Store, count: int, concurrency: int, seconds: float) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[str] = []  # stderr of each: a file, never a pipe nobody reads
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.drain_worker",
            "--url",
            store.url,
            "--options",
            json.dumps(store.options),
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
        ]
        try:
            for _ in range(count):
                fd, log = tempfile.mkstemp(prefix="drain-worker-", suffix=".log")
                self.logs.append(log)
                try:
                    proc = subprocess.Popen(
                        cmd,
                        cwd=ROOT,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=fd,
                        text=True,
                    )
                finally:
                    os.close(fd)
                self.procs.append(proc)
        except BaseException:
            self.stop()
            raise

    @property
    def pids(self) -> set[int]:
        return {p.pid for p in self.procs}

    async def ready(self, timeout: float) -> None:
        """Wait until every worker printed its ready line."""
        async with asyncio.timeout(timeout):
            for proc in self.procs:
                assert proc.stdout is not None
                line = await asyncio.to_thread(proc.stdout.readline)
                if not line:
                    raise RunFailed(f"drain worker exited before ready: {self._reason(proc)}")
                assert json.loads(line).get("ready"), line

    def go(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            try:
                proc.stdin.write("go\n")
                proc.stdin.flush()
            except OSError:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=2)
                self.check_alive()
                raise

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RunFailed(f"a drain worker exited early: {self._reason(proc)}")

    def _reason(self, proc: subprocess.Popen[str]) -> str:
        text = Path(self.logs[self.procs.index(proc)]).read_text(errors="replace")
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        if lines:
            return lines[-1]
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)  # its stdout just closed: it is exiting
        return f"exit code {proc.poll()}"

    def stop(self) -> None:
        """Stop every worker: "stop" on stdin, then SIGTERM, then SIGKILL (synchronous, so a
        cancelled or timed-out workload still ends them before its store is removed)."""
        for proc in self.procs:
            if proc.stdin is None or proc.stdin.closed:
                continue
            with contextlib.suppress(OSError, ValueError):  # it may be gone already
                proc.stdin.write("stop\n")
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.close()
        deadline = time.monotonic() + STOP_GRACE
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        for log in self.logs:
            with contextlib.suppress(OSError):
                os.unlink(log)


# -- the workload --------------------------------------------------------------------------------


async def _wait_all_done(saver: Any, ids: list[str], workers: _Workers) -> None:
    """Poll the requests in submission order (claims are oldest first) until all are final."""
    index = 0
    while index < len(ids):
        req = await saver.get_request(ids[index])
        if req is None:
            raise RunFailed(f"drain: request {ids[index]} vanished from the store")
        if req.status == "done":
            index += 1
            continue
        if req.status in ("failed", "cancelled"):
            raise RunFailed(f"drain: request on {req.thread_id} {req.status}: {req.error}")
        workers.check_alive()
        await asyncio.sleep(POLL)


async def drain(engine: Engine, store: Store, sizes: Sizes) -> Result:
    """N queued resumes drained by W worker processes: resumes per second."""
    if not store.url or store.url.startswith("memory:"):
        raise RunFailed("drain needs a store shared across processes (not memory)")
    graph = drain_graph(store.saver)
    saver = graph.checkpointer
    n, count = sizes.drain_requests, sizes.drain_workers

    prepare_s = await concurrently(lambda i: _start(graph, i), n)
    handles: list[Any] = [None] * n

    async def submit(i: int) -> None:
        handles[i] = await graph.asubmit(engine.Command(resume=_answer(i)), _cfg(i))

    enqueue_s = await concurrently(submit, n)
    t0 = time.perf_counter()
    workers = _Workers(store, count, sizes.drain_concurrency, seconds=600)
    try:
        await workers.ready(READY_TIMEOUT)
        spawn_s = time.perf_counter() - t0
        t_go = time.perf_counter()
        workers.go()
        await _wait_all_done(saver, [h.id for h in handles], workers)
        drain_s = time.perf_counter() - t_go
    finally:
        workers.stop()

    # correctness: each request done exactly once, each thread finished once, by a worker
    pids = workers.pids
    ran_by: Counter[int] = Counter()

    async def check(i: int) -> None:
        req = await handles[i].request()
        assert req.status == "done" and req.attempts == 1, (i, req.status, req.attempts)
        result = graph.serde.loads(req.result)
        snap = await graph.aget_state(_cfg(i))
        assert snap.next == () and not snap.tasks, (i, snap.next)
        values = snap.values
        assert values["n"] == i and values["answer"] == _answer(i), values
        assert len(values["acted"]) == 1 and values["acted"][0] in pids, (values, pids)
        assert result == values, (result, values)
        ran_by[values["acted"][0]] += 1

    await concurrently(check, n)
    assert sum(ran_by.values()) == n, ran_by
    shares = [ran_by.get(p, 0) for p in pids]
    return Result(
        n / drain_s,
        "resumes/s",
        {
            "drain_s": drain_s,
            "requests": n,
            "workers": count,
            "concurrency": sizes.drain_concurrency,
            "prepare_s": prepare_s,
            "enqueue_s": enqueue_s,
            "enqueue_per_s": n / enqueue_s,
            "spawn_s": spawn_s,
            "min_per_worker": min(shares),
            "max_per_worker": max(shares),
        },
    )
