"""`hitl worker`: serve a graph's run queue (or the queues `hitl serve` fills) until SIGINT or
SIGTERM, printing one line per processed run request."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
import typer

from hitl_async.checkpoint.base import RunRequest
from hitl_async.cli._common import DebugOpt, StoreOpt, StoreOptionOpt, execute
from hitl_async.cli._errors import UsageError, one_line
from hitl_async.cli._inspect import LENIENT
from hitl_async.cli._load import Store, load_graph, open_store
from hitl_async.cli._runs import state
from hitl_async.cli._serve import serve_worker
from hitl_async.graph.compiled import CompiledStateGraph
from hitl_async.worker import Worker

__all__ = ["register"]


class _ReportingWorker(Worker):
    """A `Worker` that reports each request it processed: `report(request, final, seconds)`."""

    def __init__(
        self,
        graph: CompiledStateGraph,
        *,
        report: Callable[[RunRequest, RunRequest | None, float], None],
        **options: Any,
    ) -> None:
        super().__init__(graph, **options)
        self.report = report

    async def execute(self, request: RunRequest) -> None:
        started = time.monotonic()
        await super().execute(request)
        final = await self.queue_store.get_request(request.id)
        self.report(request, final, time.monotonic() - started)


def worker(
    ctx: typer.Context,
    graph: Annotated[
        str | None,
        typer.Argument(
            metavar="[MODULE:GRAPH]",
            help="The graph whose queue to serve (or --config).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            help="Execute the runs `hitl serve` queues for the graphs of this langgraph.json.",
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs at once.")] = 4,
    queue: Annotated[
        str | None, typer.Option(help="Queue to serve [default: the graph's name].")
    ] = None,
    poll: Annotated[float, typer.Option(min=0.01, help="Seconds between duty rounds.")] = 1.0,
    max_attempts: Annotated[
        int,
        typer.Option(
            min=1,
            help="Quarantine a request claimed more often than this without finishing (it "
            "crashes its worker): marked failed, never run again (see `hitl runs`).",
        ),
    ] = 5,
    max_requests: Annotated[
        int | None, typer.Option(min=1, help="Exit after processing this many requests.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line per run.")] = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Serve a graph's run queue until SIGINT/SIGTERM (graceful: runs in progress finish)."""

    def report(request: RunRequest, final: RunRequest | None, seconds: float) -> None:
        status = state(final) if final is not None else "unknown"  # (failed, or quarantined)
        error = final.error if final is not None else None
        if status == "queued":
            status = "requeued"  # the thread was busy: given back to the queue
        elif status == "done" and final is not None and final.result is not None:
            result = LENIENT.loads(final.result)
            if isinstance(result, dict) and "__interrupt__" in result:
                status = "paused"  # the run ended waiting for a human
        if json_out:
            line = json.dumps(
                {
                    "request_id": request.id,
                    "thread_id": request.thread_id,
                    "status": status,
                    "error": error,
                    "attempt": request.attempts,
                    "seconds": round(seconds, 4),
                }
            )
        else:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            line = (
                f"{stamp} {status:<8} run {request.id} thread {request.thread_id} "
                f"{seconds:.3f}s" + (f"  {one_line(RuntimeError(error))}" if error else "")
            )
        print(line, flush=True)

    async def body(st: Store) -> int:
        if config is not None:
            return await serve_worker(config, st, concurrency, poll)
        if graph is None:
            raise UsageError("pass MODULE:GRAPH, or --config langgraph.json for hitl serve's runs")
        async with open_store(st) as saver:
            compiled = load_graph(graph, saver)
            try:
                serving = _ReportingWorker(
                    compiled,
                    report=report,
                    queue=queue,
                    concurrency=concurrency,
                    poll=poll,
                    max_attempts=max_attempts,
                )
            except ValueError as exc:
                raise UsageError(f"--store {st.url}: {exc}") from None
            sys.stderr.write(
                f"worker {serving.owner}: serving queue {serving.queue!r} of {graph} on "
                f"{st.url} (concurrency {concurrency}); Ctrl-C to stop\n"
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(_stop_on_signals, serving, tg.cancel_scope)
                await serving.run(max_requests=max_requests)
                tg.cancel_scope.cancel()
            sys.stderr.write(f"worker stopped after {serving.processed} run(s)\n")
        return 0

    execute(ctx, store, store_option, debug, body)


async def _stop_on_signals(serving: Worker, scope: anyio.CancelScope) -> None:
    """First SIGINT/SIGTERM: stop gracefully; a second one: cancel the runs in progress."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        stopping = False
        async for _ in signals:
            if stopping:
                sys.stderr.write("worker: cancelling the runs in progress\n")
                scope.cancel()
                return
            stopping = True
            sys.stderr.write("worker: stopping; runs in progress finish (signal again to abort)\n")
            serving.stop()


def register(app: typer.Typer) -> None:
    """Add `worker` to the `hitl` command."""
    app.command()(worker)
