"""The runs routes: create (background, streamed or waited for), on a thread or stateless; get,
list, cancel, delete, join and join_stream. Every SSE event carries an id; a client that
reconnects with `Last-Event-ID` (to any API process) gets the events it missed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from hitl_async.server.core import pick
from hitl_async.server.deps import authorize, core_of, runs_of
from hitl_async.server.errors import ApiError, unprocessable
from hitl_async.server.records import ACTIVE_RUN_STATUSES, RunRecord
from hitl_async.server.runs import (
    RunOptions,
    RunService,
    check_assistant_ref,
    run_json,
    stream_modes,
)
from hitl_async.server.schemas import BulkCancel, RunCreate

__all__ = ["router"]

router = APIRouter(tags=["runs"])


def _options(body: RunCreate) -> RunOptions:
    return RunOptions(
        assistant_id=body.assistant_id,
        input=body.input,
        command=body.command,
        stream_mode=body.stream_mode,
        stream_subgraphs=body.stream_subgraphs,
        stream_resumable=body.stream_resumable,
        metadata=body.metadata,
        config=body.config,
        context=body.context,
        checkpoint=body.checkpoint,
        checkpoint_id=body.checkpoint_id,
        interrupt_before=body.interrupt_before,
        interrupt_after=body.interrupt_after,
        multitask_strategy=body.multitask_strategy,
        if_not_exists=body.if_not_exists,
        on_disconnect=body.on_disconnect,
        on_completion=body.on_completion,
        after_seconds=body.after_seconds,
        durability=body.durability,
        webhook=body.webhook,
    )


async def _create(request: Request, thread_id: str | None, body: RunCreate) -> RunRecord:
    options = _options(body)
    filters = None
    if request.app.state.auth.enabled:  # (what a handler sees costs a copy of the body)
        value: dict[str, Any] = {
            "thread_id": thread_id,
            "assistant_id": body.assistant_id,
            "metadata": dict(body.metadata or {}),
            "kwargs": body.model_dump(exclude={"assistant_id", "metadata"}),
            "multitask_strategy": body.multitask_strategy,
        }
        filters = await authorize(request, "threads", "create_run", value)
        options.metadata = value.get("metadata") or options.metadata
    return await runs_of(request).create(
        thread_id, options, filters=filters, owner_metadata=filters
    )


def _locations(run: RunRecord) -> dict[str, str]:
    base = f"/threads/{run.thread_id}/runs/{run.run_id}"
    return {"Location": f"{base}/stream", "Content-Location": base}


def _wanted(stream_mode: list[str] | None) -> frozenset[str] | None:
    """The event names a join asks for (`stream_mode`, a subset of the run's); None: all."""
    stream_mode = [m for m in stream_mode or () if m]  # (the SDK sends `stream_mode=` for None)
    if not stream_mode:
        return None
    names = {"messages" if m.startswith("messages") else m for m in stream_modes(stream_mode)}
    return frozenset(names | {"metadata", "error"})


async def _sse(
    service: RunService,
    run: RunRecord,
    after: str | None,
    cancel_on_disconnect: bool,
    wanted: frozenset[str] | None = None,
) -> AsyncIterator[dict[str, str]]:
    finished = False
    try:
        async for event in service.events(run.run_id, after):
            if wanted is not None and event.event.split("|", 1)[0].split("/", 1)[0] not in wanted:
                continue
            yield {"event": event.event, "data": event.data, "id": event.id}
        finished = True
    finally:
        if not finished and cancel_on_disconnect:
            with anyio.CancelScope(shield=True):
                current = await service.records.get_run(run.run_id)
                if current is not None:
                    await service.cancel(current)


def _stream(
    request: Request,
    run: RunRecord,
    after: str | None,
    cancel_on_disconnect: bool,
    wanted: frozenset[str] | None = None,
) -> EventSourceResponse:
    return EventSourceResponse(
        _sse(runs_of(request), run, after, cancel_on_disconnect, wanted),
        headers=_locations(run),
        ping=15,
    )


async def _wait(request: Request, run: RunRecord) -> JSONResponse:
    service = runs_of(request)
    ended = await service.wait_for_end(run.run_id, created=run)  # (no await since create)
    if ended.status == "error":
        content: Any = {"__error__": ended.error}
    else:
        content = ended.output
    headers = {"Location": f"/threads/{run.thread_id}/runs/{run.run_id}/join"}
    return JSONResponse(content, headers=headers)


# -- on a thread ---------------------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs")
async def create_run(request: Request, thread_id: str, body: RunCreate) -> JSONResponse:
    """Queue a run in the background; poll it, join it, or stream it."""
    run = await _create(request, thread_id, body)
    return JSONResponse(
        run_json(run), headers={"Content-Location": _locations(run)["Content-Location"]}
    )


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(request: Request, thread_id: str, body: RunCreate) -> EventSourceResponse:
    """Create a run and stream its events (SSE, each with an id)."""
    run = await _create(request, thread_id, body)
    return _stream(request, run, None, body.on_disconnect == "cancel")


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(request: Request, thread_id: str, body: RunCreate) -> JSONResponse:
    """Create a run and answer with its final values (with `__interrupt__` when paused)."""
    return await _wait(request, await _create(request, thread_id, body))


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    request: Request,
    thread_id: str,
    limit: int = Query(10, ge=0, le=1000),
    offset: int = Query(0, ge=0),
    status: str | None = None,
    select: Annotated[list[str] | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The thread's runs, newest first (only the `select`ed fields, if given)."""
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    await core_of(request).thread(thread_id, filters)
    found = await core_of(request).records.list_runs(
        thread_id, limit=limit, offset=offset, status=status
    )
    return [pick(run_json(r), select) for r in found]


async def _visible_run(request: Request, thread_id: str, run_id: str) -> RunRecord:
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    if not filters:  # a run of the thread means the thread exists (it goes with its runs)
        run = await core_of(request).records.get_run(run_id)
        if run is not None and run.thread_id == thread_id and not run.kwargs.get("temporary"):
            return run
    await core_of(request).thread(thread_id, filters)
    return await runs_of(request).get(thread_id, run_id)


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(request: Request, thread_id: str, run_id: str) -> dict[str, Any]:
    return run_json(await _visible_run(request, thread_id, run_id))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete_run(request: Request, thread_id: str, run_id: str) -> Response:
    """Delete a run that has ended (409 while it is pending or running)."""
    run = await _visible_run(request, thread_id, run_id)
    if run.status in ACTIVE_RUN_STATUSES:
        raise ApiError(409, f"run {run_id} is {run.status}; cancel it first")
    await core_of(request).records.delete_run(run_id)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    request: Request,
    thread_id: str,
    run_id: str,
    wait: bool = Query(False),
    action: str = Query("interrupt"),
) -> Response:
    """Stop the run (`action=rollback` also undoes what it wrote); `wait=1` until it ended."""
    if action not in ("interrupt", "rollback"):
        raise unprocessable("action must be 'interrupt' or 'rollback'")
    filters = await authorize(request, "threads", "update", {"thread_id": thread_id})
    await core_of(request).thread(thread_id, filters)
    service = runs_of(request)
    run = await service.get(thread_id, run_id)
    if run.status not in ACTIVE_RUN_STATUSES:
        raise ApiError(409, f"run {run_id} has already ended ({run.status})")
    await service.cancel(run, action=action)
    if wait:
        with anyio.move_on_after(60):
            await service.wait_for_end(run_id)
        return JSONResponse({})
    return Response(status_code=202)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(request: Request, thread_id: str, run_id: str) -> JSONResponse:
    """Wait for the run to end; the thread's values then."""
    run = await _visible_run(request, thread_id, run_id)
    ended = await runs_of(request).wait_for_end(run.run_id)
    if ended.status == "error":
        return JSONResponse({"__error__": ended.error})
    record = await core_of(request).records.get_thread(thread_id)
    return JSONResponse(record.values if record is not None else ended.output)


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    request: Request,
    thread_id: str,
    run_id: str,
    cancel_on_disconnect: bool = Query(False),
    stream_mode: Annotated[list[str] | None, Query()] = None,
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> EventSourceResponse:
    """The run's events after `Last-Event-ID` (all of them without it), live until it ends;
    only those of `stream_mode` when given."""
    run = await _visible_run(request, thread_id, run_id)
    wanted = _wanted(stream_mode)
    return _stream(request, run, last_event_id or None, cancel_on_disconnect, wanted)


@router.get("/threads/{thread_id}/stream")
async def join_thread_stream(
    request: Request,
    thread_id: str,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> EventSourceResponse:
    """The events of the thread's runs, live: the active run and every later one, each ended by
    `metadata {"status": "run_done"}`; after `Last-Event-ID`, from there on."""
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    await core_of(request).thread(thread_id, filters)
    modes = None if not stream_mode or "run_modes" in stream_mode else stream_modes(stream_mode)

    async def sse() -> AsyncIterator[dict[str, str]]:
        async for event in runs_of(request).thread_events(thread_id, modes, last_event_id):
            yield {"event": event.event, "data": event.data, "id": event.id}

    return EventSourceResponse(sse(), ping=15)


# -- stateless -----------------------------------------------------------------------------------


@router.post("/runs")
async def create_stateless(request: Request, body: RunCreate) -> JSONResponse:
    run = await _create(request, None, body)
    return JSONResponse(run_json(run))


@router.post("/runs/stream")
async def stream_stateless(request: Request, body: RunCreate) -> EventSourceResponse:
    """A run on a temporary thread (deleted afterwards unless `on_completion="keep"`)."""
    run = await _create(request, None, body)
    return _stream(request, run, None, body.on_disconnect == "cancel")


@router.post("/runs/wait")
async def wait_stateless(request: Request, body: RunCreate) -> JSONResponse:
    return await _wait(request, await _create(request, None, body))


@router.post("/runs/batch")
async def create_batch(request: Request, body: list[RunCreate]) -> list[dict[str, Any]]:
    """Several stateless background runs at once (each on a thread of its own); an unknown
    assistant or stream mode in any of them refuses the batch before one is created."""
    for item in body:
        check_assistant_ref(item.assistant_id, core_of(request).graphs)
        await core_of(request).assistant(item.assistant_id)
        stream_modes(item.stream_mode)
    return [run_json(await _create(request, None, item)) for item in body]


@router.post("/runs/cancel", status_code=204)
async def cancel_many(
    request: Request, body: BulkCancel, action: str = Query("interrupt")
) -> Response:
    """Stop the named runs of a thread, or every pending and/or running run (`status`)."""
    if action not in ("interrupt", "rollback"):
        raise unprocessable("action must be 'interrupt' or 'rollback'")
    value: dict[str, Any] = {
        "thread_id": body.thread_id,
        "action": action,
        "metadata": {"run_ids": body.run_ids, "status": body.status},
    }
    filters = await authorize(request, "threads", "update", value)
    await runs_of(request).cancel_many(
        thread_id=body.thread_id,
        run_ids=body.run_ids,
        status=body.status,
        action=action,
        filters=filters,
    )
    return Response(status_code=204)
