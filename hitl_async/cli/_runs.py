"""`hitl runs`: the run queue as an operator sees it. Every request whatever its status, with its
attempts, the worker that holds (or last held) it and why it failed: a poison request (a payload
that cannot be decoded, one queued for another graph) and a quarantined one (it crashed the
workers that took it too often) are failed requests with their reason.

    hitl runs [--status failed] [--thread T] [--queue Q] [--limit N] [--before CURSOR] [--json]
    hitl runs show ID [--json]
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from hitl_async.checkpoint.base import RunRequest
from hitl_async.checkpoint.capabilities import RunQuery, RunQueueStore, run_order
from hitl_async.cli._common import (
    DebugOpt,
    JsonOpt,
    StoreOpt,
    StoreOptionOpt,
    execute,
    parse_cursor,
)
from hitl_async.cli._errors import NotFoundError, UsageError
from hitl_async.cli._inspect import LENIENT
from hitl_async.cli._load import Store, open_store
from hitl_async.cli._render import compact, console, emit_json, when

__all__ = ["register", "runs_app"]

STATUSES = ("queued", "running", "done", "failed", "cancelled")
QUARANTINE = "quarantined"
"""How `Worker` begins the error of a request it quarantined (see `hitl_async.worker`)."""

runs_app = typer.Typer(
    name="runs",
    help="List and inspect run requests of the run queue (hitl worker / submit() / hitl serve).",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _queue_store(saver: object, st: Store) -> RunQueueStore:
    if not isinstance(saver, RunQueueStore):
        raise UsageError(f"--store {st.url}: {type(saver).__name__} has no run queue")
    return saver


def state(request: RunRequest) -> str:
    """The status as shown: `quarantined` for a failed request a worker quarantined,
    `damaged` for a row that cannot be read."""
    if request.damaged is not None:
        return "damaged"
    if request.status == "failed" and (request.error or "").startswith(QUARANTINE):
        return QUARANTINE
    return request.status


def _claim_text(request: RunRequest, now: float) -> str | None:
    if request.status != "running" or request.claim_expires is None:
        return None
    left = request.claim_expires - now
    if left >= 0:
        return f"claim expires in {left:.0f}s"
    return f"claim expired {-left:.0f}s ago (its worker died or stalled: another worker retakes it)"


def _row(request: RunRequest, now: float) -> dict[str, Any]:
    return {
        "id": request.id,
        "queue": request.queue,
        "thread_id": request.thread_id,
        "status": request.status,
        "state": state(request),
        "attempts": request.attempts,
        "owner": request.owner,
        "created_at": request.created_at,
        "claim_expires": request.claim_expires,
        "claim": _claim_text(request, now),
        "error": request.error,
        "damaged": request.damaged,
        "cursor": json.dumps(list(run_order(request))),
    }


def _table(requests: list[RunRequest]) -> Table:
    table = Table(title=f"{len(requests)} run request(s), newest first", title_justify="left")
    table.add_column("id", no_wrap=True)
    table.add_column("thread", no_wrap=True)
    for name in ("queue", "status", "attempts", "owner", "created"):
        table.add_column(name)
    table.add_column("error", overflow="fold", max_width=80)
    for r in requests:
        problem = f"DAMAGED: {r.damaged}" if r.damaged is not None else (r.error or "")
        table.add_row(
            r.id,
            r.thread_id,
            r.queue,
            state(r),
            str(r.attempts),
            r.owner or "-",
            when(r.created_at),
            _cut(problem, 200) if problem else "-",
        )
    return table


def _cut(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _cursor(text: str | None) -> tuple[str, str] | None:
    value = parse_cursor(text, "--before", "request", ("created_at", "id"))
    return None if value is None else (value[0], value[1])


@runs_app.callback()
def runs(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(metavar="STATUS", help=f"Only this status ({', '.join(STATUSES)})."),
    ] = None,
    thread: Annotated[str | None, typer.Option("--thread", "-t", help="Only this thread.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue (a graph's name).")] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many.")] = 100,
    before: Annotated[
        str | None,
        typer.Option(metavar="CURSOR", help="Next page: the cursor of the last request shown."),
    ] = None,
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run requests, newest first: status, attempts, owner, and why one failed or was
    quarantined. `hitl runs show ID` for one request."""
    if ctx.invoked_subcommand is not None:
        return

    async def body(st: Store) -> int:
        if status is not None and status not in STATUSES:
            raise UsageError(f"--status expects one of {', '.join(STATUSES)}, got {status!r}")
        query = RunQuery(
            queue=queue, thread_id=thread, status=status, before=_cursor(before), limit=limit
        )
        async with open_store(st, must_exist=True) as saver:
            found = await _queue_store(saver, st).list_requests(query)
        now = time.time()
        if json_out:
            emit_json([_row(r, now) for r in found])
            return 0
        out = console()
        out.print(_table(found))
        if found and len(found) == limit:
            out.print(f"more: --before '{json.dumps(list(run_order(found[-1])))}'")
        return 0

    execute(ctx, store, store_option, debug, body)


def _decoded(data: bytes | None) -> Any:
    return None if data is None else LENIENT.loads(data)


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(metavar="ID", help="The run request's id.")],
    json_out: JsonOpt = False,
    store: StoreOpt = None,
    store_option: StoreOptionOpt = None,
    debug: DebugOpt = False,
) -> None:
    """One run request: status, attempts, owner, claim, error, its input and its result."""

    async def body(st: Store) -> int:
        async with open_store(st, must_exist=True) as saver:
            found = await _queue_store(saver, st).get_request(request_id)
        if found is None:
            raise NotFoundError(f"run request {request_id!r} not found in {st.url}")
        payload = _decoded(found.payload)
        detail = {
            **_row(found, time.time()),
            "request": payload,
            "result": _decoded(found.result),
        }
        if json_out:
            emit_json(detail)
            return 0
        out = console()
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        grid.add_row("request", found.id)
        grid.add_row("thread", found.thread_id)
        grid.add_row("queue", found.queue)
        grid.add_row("status", state(found))
        grid.add_row("attempts", str(found.attempts))
        grid.add_row("owner", found.owner or "-")
        grid.add_row("created", when(found.created_at))
        claim = _claim_text(found, time.time())
        if claim is not None:
            grid.add_row("claim", claim)
        if found.error is not None:
            grid.add_row("error", Text(found.error))
        grid.add_row("input", compact(payload, 500))
        if found.result is not None:
            grid.add_row("result", compact(detail["result"], 500))
        out.print(grid)
        return 0

    execute(ctx, store, store_option, debug, body)


def register(app: typer.Typer) -> None:
    """Add `hitl runs ...` to the `hitl` command."""
    app.add_typer(runs_app, name="runs")
