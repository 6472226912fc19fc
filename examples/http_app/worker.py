"""The worker of the HTTP example: executes the runs the web app queues, until SIGTERM/SIGINT.

    HITL_STORE=postgresql://postgres@127.0.0.1:5432/test HITL_STORE_SCHEMA=expenses \\
        python -m examples.http_app.worker [--concurrency 4]

Start as many as you like, on as many machines as share the store: each run executes once and
a thread never has two writers. The first SIGTERM/SIGINT stops taking work and lets the runs in
progress finish (up to `--grace` seconds, then they are given back to the queue); a second one
cancels them at once.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from urllib.parse import urlsplit

import anyio

from hitl_async import CompiledStateGraph, Worker

from .workflow import graph as graph_from_env
from .workflow import store_from_env

__all__ = ["main", "serve"]

log = logging.getLogger("examples.http_app.worker")


def redacted(url: str) -> str:
    """`url` without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


async def stop_on_signals(worker: Worker, scope: anyio.CancelScope) -> None:
    """First signal: stop gracefully; second: cancel the runs in progress."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        stopping = False
        async for signum in signals:
            name = signal.Signals(signum).name
            if stopping:
                log.warning("second %s: cancelling the runs in progress", name)
                scope.cancel()
                return
            stopping = True
            log.info("%s: finishing the runs in progress", name)
            worker.stop()


async def serve(
    graph: CompiledStateGraph, *, concurrency: int = 4, poll: float = 1.0, grace: float = 30.0
) -> int:
    """Serve `graph`'s run queue until a signal stops the worker; closes the store."""
    saver = graph.checkpointer
    if saver is None:
        raise RuntimeError("the worker needs a graph compiled with a shared checkpointer")
    try:
        await saver.setup()
        worker = Worker(graph, concurrency=concurrency, poll=poll, grace=grace)
        url, options = store_from_env()
        log.info(
            "worker %s serving queue %r on %s %s(concurrency %d)",
            worker.owner,
            worker.queue,
            redacted(url),
            f"schema {options['schema']} " if "schema" in options else "",
            concurrency,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signals, worker, tg.cancel_scope)
            await worker.run()
            tg.cancel_scope.cancel()
        log.info("worker stopped after %d run(s)", worker.processed)
    finally:
        with anyio.CancelScope(shield=True):
            await saver.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=4, help="runs at once (default 4)")
    parser.add_argument(
        "--poll", type=float, default=1.0, help="seconds between recovery/deadline rounds"
    )
    parser.add_argument(
        "--grace", type=float, default=30.0, help="seconds runs may take to finish on stop"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return anyio.run(
        lambda: serve(
            graph_from_env(), concurrency=args.concurrency, poll=args.poll, grace=args.grace
        )
    )


if __name__ == "__main__":
    sys.exit(main())
