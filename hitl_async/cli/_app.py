"""The `hitl` commands (typer). Each command runs its own event loop (`anyio.run`) and closes the
store's saver before it returns; errors end it with one line and a documented exit code."""

import json
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
import typer

from hitl_async._input import is_interrupt_id
from hitl_async.checkpoint.base import RunRequest
from hitl_async.checkpoint.capabilities import InboxStore
from hitl_async.cli._errors import (
    EXIT_CODES,
    INTERRUPTED,
    NotFoundError,
    UsageError,
    exit_code_for,
    one_line,
)
from hitl_async.cli._inspect import LENIENT, ThreadView, scan_pending
from hitl_async.cli._load import (
    DEFAULT_STORE,
    STORE_ENV,
    Store,
    load_graph,
    open_store,
    parse_duration,
    parse_json,
)
from hitl_async.cli._render import (
    compact,
    console,
    emit_json,
    history_table,
    inbox_table,
    print_event,
    print_thread,
    threads_table,
)
from hitl_async.cli._serve import register as register_serve
from hitl_async.cli._serve import serve_worker
from hitl_async.cli._store import register as register_store
from hitl_async.graph.compiled import CompiledStateGraph
from hitl_async.inbox import list_pending
from hitl_async.types import Command
from hitl_async.worker import Worker

__all__ = ["app"]

EPILOG = (
    f"Store: --store URL, else ${STORE_ENV}, else {DEFAULT_STORE} (a file in the working "
    "directory): sqlite:///rel.db, sqlite:////abs.db, postgresql://..., redis://..., or "
    "memory:// (one process only). Driver options: --store-option KEY=VALUE (repeatable) or the "
    "URL's query string.\n\n"
    "MODULE:GRAPH is imported with the working directory on sys.path; GRAPH is a StateGraph, a "
    "CompiledStateGraph (rebound to the store) or a zero-argument function returning one.\n\n"
    "\b\nExit codes:\n"
    + "".join(f"  {code:<4}{text}\n" for code, text in EXIT_CODES.items())
    + f"  {INTERRUPTED:<4}interrupted (Ctrl-C)\n\n"
    "Errors are one line on stderr (error: ...); --debug adds the traceback."
)

app = typer.Typer(
    name="hitl",
    help="Run, inspect and answer human-in-the-loop graphs of hitl-async from the shell.",
    epilog=EPILOG,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help=f"Checkpoint store URL [default: ${STORE_ENV} or {DEFAULT_STORE}].",
        show_default=False,
    ),
]
StoreOptionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--store-option",
        metavar="KEY=VALUE",
        help="Driver option (repeatable); VALUE is JSON when it parses, else text.",
        show_default=False,
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
ThreadOpt = Annotated[str, typer.Option("--thread", "-t", help="Thread id.", show_default=False)]
GraphArg = Annotated[
    str, typer.Argument(metavar="MODULE:GRAPH", help="Where the graph is, e.g. myapp.flows:graph.")
]
OptionalGraphArg = Annotated[
    str | None,
    typer.Argument(
        metavar="[MODULE:GRAPH]",
        help="Read through the graph (exact state); without it, from the store alone.",
        show_default=False,
    ),
]


@dataclass
class _Globals:
    store: str | None = None
    options: list[str] = field(default_factory=list)
    debug: bool = False


@app.callback()
def _root(
    ctx: typer.Context,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run, inspect and answer human-in-the-loop graphs of hitl-async from the shell."""
    ctx.obj = _Globals(store, list(store_option or []), debug)


def _unwrap(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _fail(exc: BaseException, debug: bool) -> int:
    """Report `exc` as one line on stderr (and its traceback with --debug); its exit code."""
    exc = _unwrap(exc)
    if debug:
        traceback.print_exception(exc)
    message = "interrupted" if isinstance(exc, KeyboardInterrupt) else one_line(exc)
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    return exit_code_for(exc)


def _execute(
    ctx: typer.Context,
    store: str | None,
    store_option: list[str] | None,
    debug: bool,
    body: Callable[[Store], Awaitable[int | None]],
) -> None:
    """Resolve the store, run `body` in a fresh event loop, turn errors into exit codes."""
    root = ctx.find_root().obj
    top = root if isinstance(root, _Globals) else _Globals()
    debug = debug or top.debug
    try:
        chosen = Store.resolve(store or top.store, [*top.options, *(store_option or [])])
        code = anyio.run(body, chosen)
    except (Exception, KeyboardInterrupt, BaseExceptionGroup) as exc:
        raise typer.Exit(_fail(exc, debug)) from None
    if code:
        raise typer.Exit(code)


def _config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


# -- demo ----------------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    thread: Annotated[
        str | None, typer.Option("--thread", "-t", help="Thread id [default: a new one].")
    ] = None,
    answer: Annotated[
        str | None,
        typer.Option(help="The human's answer (yes/no); asked at the terminal when omitted."),
    ] = None,
    stop_at_pause: Annotated[
        bool, typer.Option("--stop-at-pause", help="Exit once paused; print how to resume.")
    ] = False,
    resume_only: Annotated[
        bool, typer.Option("--resume-only", help="Only resume --thread (paused earlier).")
    ] = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """The approval workflow end to end: pause, ask, resume, outcome."""
    from hitl_async.demo import run_demo

    async def body(st: Store) -> int:
        hint = "hitl demo {flags} --thread {{thread}} --resume-only --answer yes"
        return await run_demo(
            st.url,
            thread=thread,
            answer=answer,
            stop_at_pause=stop_at_pause,
            resume_only=resume_only,
            options=st.options,
            resume_hint=hint.format(flags=st.flags().replace("{", "{{").replace("}", "}}")),
        )

    _execute(ctx, store, store_option, debug, body)


# -- run / resume --------------------------------------------------------------------------------


async def _drive(
    st: Store, spec: str, thread: str, payload: Any, json_out: bool, wait: float
) -> int:
    out = console()
    async with open_store(st) as saver:
        graph = load_graph(spec, saver)
        cfg = _config(thread)
        events: list[Any] = []
        async for event in graph.astream(payload, cfg, wait=wait):
            events.append(event)
            if not json_out:
                print_event(out, event)
        view = ThreadView.from_snapshot(thread, await graph.aget_state(cfg))
    if json_out:
        emit_json({**view.to_json(), "events": events})
        return 0
    if view.status == "paused":
        for i in view.interrupts:
            out.print(f"paused: {i.node} asks {compact(i.value, 300)} (interrupt {i.id})")
        by_id = " --id ID" if len(view.interrupts) > 1 else ""
        out.print(
            f"answer with: hitl resume {spec} --thread {thread} {st.flags()} --value JSON{by_id}"
        )
    elif view.status == "done":
        out.print(f"done: {compact(view.values, 500)}")
    else:
        out.print(f"{view.status}: next {', '.join(view.next)}; {compact(view.values, 500)}")
    return 0


@app.command()
def run(
    ctx: typer.Context,
    graph: GraphArg,
    thread: Annotated[
        str | None, typer.Option("--thread", "-t", help="Thread id [default: a new one].")
    ] = None,
    input: Annotated[
        str | None,
        typer.Option(
            "--input", metavar="JSON", help="The run's input; omit to continue the thread."
        ),
    ] = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a busy thread before failing.")
    ] = 0.0,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run a graph on a thread until it finishes or pauses."""

    async def body(st: Store) -> int:
        payload = parse_json(input, "--input")
        chosen = thread or f"run-{uuid.uuid4().hex[:8]}"
        return await _drive(st, graph, chosen, payload, json_out, wait)

    _execute(ctx, store, store_option, debug, body)


@app.command()
def resume(
    ctx: typer.Context,
    graph: GraphArg,
    thread: ThreadOpt,
    value: Annotated[str, typer.Option("--value", metavar="JSON", help="The answer (JSON).")],
    interrupt_id: Annotated[
        str | None,
        typer.Option("--id", metavar="ID", help="Answer this interrupt (when several wait)."),
    ] = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a busy thread before failing.")
    ] = 0.0,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Answer a paused thread's interrupt and run on (strict: errors change nothing)."""

    async def body(st: Store) -> int:
        answer = parse_json(value, "--value")
        if interrupt_id is None:
            command = Command(resume=answer)
        else:
            # A resume map is told from a dict answer by its keys' shape: check it here, so a
            # mistyped id is an error rather than a dict sent as the answer.
            key = interrupt_id.strip().lower()
            if not is_interrupt_id(key):
                raise UsageError(
                    f"--id expects an interrupt id (32 hex digits, as `hitl inbox` shows), "
                    f"got {interrupt_id!r}"
                )
            command = Command(resume={key: answer})
        return await _drive(st, graph, thread, command, json_out, wait)

    _execute(ctx, store, store_option, debug, body)


# -- reading -------------------------------------------------------------------------------------


def _cursor(text: str | None) -> tuple[str, str, str] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
        raise UsageError(
            "--after expects the cursor of the last item of the previous page: a JSON array "
            '["created_at", "thread_id", "interrupt_id"] (the "cursor" field of --json output)'
        )
    return (value[0], value[1], value[2])


@app.command()
def inbox(
    ctx: typer.Context,
    thread: Annotated[str | None, typer.Option("--thread", "-t", help="Only this thread.")] = None,
    node: Annotated[str | None, typer.Option(help="Only interrupts raised by this node.")] = None,
    graph_name: Annotated[
        str | None, typer.Option("--graph", metavar="NAME", help="Only this graph (its name).")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many.")] = 100,
    after: Annotated[
        str | None,
        typer.Option(metavar="CURSOR", help="Next page: the cursor of the last item shown."),
    ] = None,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Interrupts waiting for a human, across threads, oldest first."""

    async def body(st: Store) -> int:
        cursor = _cursor(after)
        async with open_store(st, must_exist=True) as saver:
            indexed = isinstance(saver, InboxStore)
            if isinstance(saver, InboxStore):
                items = await list_pending(
                    saver,
                    thread_id=thread,
                    node=node,
                    graph=graph_name,
                    after=cursor,
                    limit=limit,
                    serde=LENIENT,
                )
            elif graph_name is not None:
                raise UsageError(
                    f"--graph needs a store with an inbox index; {type(saver).__name__} has none"
                )
            else:
                items = await scan_pending(
                    saver, thread_id=thread, node=node, after=cursor, limit=limit
                )
        if json_out:
            emit_json(
                [
                    {
                        "thread_id": p.thread_id,
                        "interrupt_id": p.interrupt_id,
                        "node": p.node,
                        "graph": p.graph,
                        "value": p.value,
                        "created_at": p.created_at,
                        "deadline": p.deadline,
                        "checkpoint_ns": p.checkpoint_ns,
                        "damaged": p.damaged,
                        "cursor": json.dumps(list(p.cursor)),
                    }
                    for p in items
                ]
            )
            return 0
        out = console()
        out.print(inbox_table(items))
        if not indexed:
            out.print("(this store keeps no inbox index: every thread's head was read)")
        if items and len(items) == limit:
            out.print(f"more: --after '{json.dumps(list(items[-1].cursor))}'")
        return 0

    _execute(ctx, store, store_option, debug, body)


async def _head(st: Store, spec: str | None, thread: str) -> ThreadView:
    async with open_store(st, must_exist=True) as saver:
        if spec is not None:
            graph = load_graph(spec, saver)
            snapshot = await graph.aget_state(_config(thread))
            if snapshot.metadata is None:
                raise NotFoundError(f"thread {thread!r} not found in {st.url}")
            return ThreadView.from_snapshot(thread, snapshot)
        loaded = await saver.load(thread)
        if loaded is None:
            raise NotFoundError(f"thread {thread!r} not found in {st.url}")
        return ThreadView.from_loaded(loaded)


@app.command()
def show(
    ctx: typer.Context,
    thread: ThreadOpt,
    graph: OptionalGraphArg = None,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """A thread's state: values, next tasks, pending interrupts."""

    async def body(st: Store) -> int:
        view = await _head(st, graph, thread)
        if json_out:
            emit_json(view.to_json())
        else:
            print_thread(console(), view)
        return 0

    _execute(ctx, store, store_option, debug, body)


async def _history(st: Store, spec: str | None, thread: str, limit: int | None) -> list[ThreadView]:
    async with open_store(st, must_exist=True) as saver:
        if spec is not None:
            graph: CompiledStateGraph = load_graph(spec, saver)
            views = [
                ThreadView.from_snapshot(thread, s)
                async for s in graph.aget_state_history(_config(thread), limit=limit)
            ]
        else:
            views = [ThreadView.from_loaded(c) for c in await saver.history(thread, limit=limit)]
    if not views and limit != 0:
        raise NotFoundError(f"thread {thread!r} not found in {st.url}")
    return views


@app.command()
def history(
    ctx: typer.Context,
    thread: ThreadOpt,
    graph: OptionalGraphArg = None,
    limit: Annotated[
        int | None, typer.Option(min=0, help="At most this many checkpoints [default: all].")
    ] = None,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """A thread's checkpoints, newest first."""

    async def body(st: Store) -> int:
        views = await _history(st, graph, thread, limit)
        if json_out:
            emit_json([v.to_json() for v in views])
        else:
            console().print(history_table(views))
        return 0

    _execute(ctx, store, store_option, debug, body)


@app.command()
def threads(
    ctx: typer.Context,
    limit: Annotated[
        int | None, typer.Option(min=0, help="At most this many threads [default: all].")
    ] = None,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Threads in the store with their status, most recently updated first."""

    async def body(st: Store) -> int:
        views = []
        async with open_store(st, must_exist=True) as saver:
            for thread_id in await saver.list_threads(limit=limit):
                loaded = await saver.load(thread_id)
                if loaded is not None:
                    views.append(ThreadView.from_loaded(loaded))
        views.sort(key=lambda v: v.created_at or "", reverse=True)
        if json_out:
            emit_json(
                [
                    {
                        "thread_id": v.thread_id,
                        "status": v.status,
                        "next": v.next,
                        "interrupts": len(v.interrupts),
                        "step": v.step,
                        "checkpoint_id": v.checkpoint_id,
                        "updated_at": v.created_at,
                    }
                    for v in views
                ]
            )
        else:
            console().print(threads_table(views))
        return 0

    _execute(ctx, store, store_option, debug, body)


# -- prune ---------------------------------------------------------------------------------------


@app.command()
def prune(
    ctx: typer.Context,
    thread: Annotated[str | None, typer.Option("--thread", "-t", help="Prune this thread.")] = None,
    all_threads: Annotated[
        bool, typer.Option("--all-threads", help="Prune every thread of the store.")
    ] = False,
    keep_last: Annotated[
        int | None, typer.Option(min=1, help="Keep the N newest checkpoints of each thread.")
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(metavar="DURATION", help="Delete checkpoints older than this (7d, 12h)."),
    ] = None,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Delete old checkpoints. A checkpoint is kept if it is among the --keep-last newest, or
    newer than --older-than, or the thread's head (so paused threads stay resumable)."""

    async def body(st: Store) -> int:
        if (thread is None) == (not all_threads):
            raise UsageError("prune needs exactly one of --thread T and --all-threads")
        if keep_last is None and older_than is None:
            raise UsageError("prune needs --keep-last N and/or --older-than DURATION")
        newer_than = None
        if older_than is not None:
            newer_than = datetime.now(UTC) - parse_duration(older_than, "--older-than")
        deleted: dict[str, int] = {}
        async with open_store(st, must_exist=True) as saver:
            if thread is not None:
                if await saver.load(thread) is None:
                    raise NotFoundError(f"thread {thread!r} not found in {st.url}")
                targets = [thread]
            else:
                targets = await saver.list_threads()
            for t in targets:
                deleted[t] = await saver.prune(t, keep_last=keep_last, newer_than=newer_than)
        total = sum(deleted.values())
        if json_out:
            emit_json({"deleted": total, "threads": deleted})
        else:
            console().print(f"deleted {total} checkpoint(s) from {len(deleted)} thread(s)")
        return 0

    _execute(ctx, store, store_option, debug, body)


# -- worker --------------------------------------------------------------------------------------


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


@app.command()
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
        status = final.status if final is not None else "unknown"
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
                    compiled, report=report, queue=queue, concurrency=concurrency, poll=poll
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

    _execute(ctx, store, store_option, debug, body)


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


register_serve(app)
register_store(app)
