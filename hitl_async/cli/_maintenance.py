"""`hitl prune`: delete old checkpoints of one thread or of every thread, keeping each
thread's head (so paused threads stay resumable)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from hitl_async.cli._common import DebugOpt, JsonOpt, StoreOpt, StoreOptionOpt, execute
from hitl_async.cli._errors import NotFoundError, UsageError
from hitl_async.cli._load import Store, open_store, parse_duration
from hitl_async.cli._render import console, emit_json

__all__ = ["register"]


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

    execute(ctx, store, store_option, debug, body)


def register(app: typer.Typer) -> None:
    """Add `prune` to the `hitl` command."""
    app.command()(prune)
