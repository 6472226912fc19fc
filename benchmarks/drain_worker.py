"""One worker process of the drain workload: `python -m benchmarks.drain_worker --url URL ...`.

It builds the same graph as the parent (`benchmarks.drain.drain_graph`, so the same queue name),
connects and warms up, prints `{"ready": owner, "pid": pid}` and waits for a `go` line on stdin
before serving the queue with `hitl_async.Worker(graph, concurrency=N)`. It stops (finishing the
runs it holds) on a `stop` line, on stdin closing, on SIGTERM/SIGINT, or after `--seconds`, then
prints `{"processed": count}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

import anyio


async def _stdin() -> asyncio.StreamReader:
    """stdin as a cancellable stream (no thread left blocked in a read at exit)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def _stop_on_stdin(worker: Any, stdin: asyncio.StreamReader) -> None:
    while (await stdin.readline()).strip() not in (b"stop", b""):
        pass
    worker.stop()


async def _stop_on_signal(worker: Any) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            break
    worker.stop()


async def serve(args: argparse.Namespace) -> int:
    import hitl_async
    from benchmarks.drain import drain_graph

    saver = hitl_async.connect(args.url, **json.loads(args.options))
    try:
        graph = drain_graph(saver)
        worker = hitl_async.Worker(graph, concurrency=args.concurrency, grace=5.0)
        await saver.get_request("warm-up")  # connect, and load the driver's lazy imports
        await graph.aget_state({"configurable": {"thread_id": "warm-up"}})
        print(json.dumps({"ready": worker.owner, "pid": os.getpid()}), flush=True)
        stdin = await _stdin()
        if (await stdin.readline()).strip() != b"go":
            return 0
        with anyio.move_on_after(args.seconds):
            async with anyio.create_task_group() as tg:
                tg.start_soon(_stop_on_stdin, worker, stdin)
                tg.start_soon(_stop_on_signal, worker)
                await worker.run()
                tg.cancel_scope.cancel()
        print(json.dumps({"processed": worker.processed}), flush=True)
    finally:
        await saver.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a drain-workload worker process")
    parser.add_argument("--url", required=True, help="the store, for hitl_async.connect")
    parser.add_argument("--options", default="{}", help="connect() options, as JSON")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    return asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
