"""Reading commands: `hitl inbox`, `hitl show`, `hitl history`, `hitl threads`. They never
write, and never create a SQLite file (a missing one is "store unavailable", exit code 5)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hitl_async.checkpoint.capabilities import InboxStore
from hitl_async.cli._common import (
    DebugOpt,
    JsonOpt,
    OptionalGraphArg,
    StoreOpt,
    StoreOptionOpt,
    ThreadOpt,
    execute,
    parse_cursor,
    thread_config,
)
from hitl_async.cli._errors import NotFoundError, UsageError
from hitl_async.cli._inspect import LENIENT, ThreadView, scan_pending
from hitl_async.cli._load import Store, load_graph, open_store
from hitl_async.cli._render import (
    console,
    emit_json,
    history_table,
    inbox_table,
    print_thread,
    threads_table,
)
from hitl_async.graph.compiled import CompiledStateGraph
from hitl_async.inbox import list_pending

__all__ = ["register"]


def _cursor(text: str | None) -> tuple[str, str, str] | None:
    value = parse_cursor(text, "--after", "item", ("created_at", "thread_id", "interrupt_id"))
    return None if value is None else (value[0], value[1], value[2])


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

    execute(ctx, store, store_option, debug, body)


async def _head(st: Store, spec: str | None, thread: str) -> ThreadView:
    async with open_store(st, must_exist=True) as saver:
        if spec is not None:
            graph = load_graph(spec, saver)
            snapshot = await graph.aget_state(thread_config(thread))
            if snapshot.metadata is None:
                raise NotFoundError(f"thread {thread!r} not found in {st.url}")
            return ThreadView.from_snapshot(thread, snapshot)
        loaded = await saver.load(thread)
        if loaded is None:
            raise NotFoundError(f"thread {thread!r} not found in {st.url}")
        return ThreadView.from_loaded(loaded)


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

    execute(ctx, store, store_option, debug, body)


async def _history(st: Store, spec: str | None, thread: str, limit: int | None) -> list[ThreadView]:
    async with open_store(st, must_exist=True) as saver:
        if spec is not None:
            graph: CompiledStateGraph = load_graph(spec, saver)
            views = [
                ThreadView.from_snapshot(thread, s)
                async for s in graph.aget_state_history(thread_config(thread), limit=limit)
            ]
        else:
            views = [ThreadView.from_loaded(c) for c in await saver.history(thread, limit=limit)]
    if not views and limit != 0:
        raise NotFoundError(f"thread {thread!r} not found in {st.url}")
    return views


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

    execute(ctx, store, store_option, debug, body)


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

    execute(ctx, store, store_option, debug, body)


def register(app: typer.Typer) -> None:
    """Add `inbox`, `show`, `history` and `threads` to the `hitl` command."""
    app.command()(inbox)
    app.command()(show)
    app.command()(history)
    app.command()(threads)
