"""The threads routes: create, read, search, update, delete, copy, state and history."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Header, Query, Request, Response

from hitl_async.server.core import pick, thread_json
from hitl_async.server.deps import authorize, core_of
from hitl_async.server.errors import ApiError, unprocessable
from hitl_async.server.records import ThreadQuery
from hitl_async.server.schemas import (
    CheckpointRef,
    HistoryRequest,
    ThreadCreate,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
    ThreadStateUpdate,
)

__all__ = ["router"]

router = APIRouter(tags=["threads"])


def _owner_metadata(
    metadata: dict[str, Any] | None, filters: dict[str, Any] | None
) -> dict[str, Any]:
    """The thread's metadata with the caller's filter stamped on (so they see what they make)."""
    return {**(metadata or {}), **(filters or {})}


def _checkpoint_ref(given: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """A checkpoint as the SDK may name it: its id, a checkpoint dict, or a config."""
    if given is None or isinstance(given, str):
        return {"checkpoint_id": given} if given else None
    configurable = given.get("configurable")
    return dict(configurable) if isinstance(configurable, dict) else given


@router.post("/threads")
async def create_thread(request: Request, body: ThreadCreate) -> dict[str, Any]:
    """A new thread (idle, no state yet)."""
    value: dict[str, Any] = {
        "thread_id": body.thread_id,
        "metadata": dict(body.metadata or {}),
        "if_exists": body.if_exists,
    }
    filters = await authorize(request, "threads", "create", value)
    metadata = _owner_metadata(value.get("metadata"), filters)
    if body.graph_id is not None:
        metadata.setdefault("graph_id", body.graph_id)
    core = core_of(request)
    if body.supersteps and metadata.get("graph_id") not in core.graphs:
        raise unprocessable(f"supersteps need a graph_id, one of {sorted(core.graphs)}")
    record = await core.create_thread(
        thread_id=body.thread_id, metadata=metadata, if_exists=body.if_exists
    )
    if body.supersteps and record.values is None:
        try:
            record = await core.apply_supersteps(record, body.supersteps)
        except BaseException:
            with anyio.CancelScope(shield=True):  # (refused: no thread is left behind)
                await core.delete_thread(record.thread_id, None)
            raise
        return thread_json(record)
    return thread_json(record)  # (an existing thread, with do_nothing: its interrupts too)


def _query(body: ThreadSearch, filters: dict[str, Any] | None) -> ThreadQuery:
    metadata = {**(body.metadata or {}), **(filters or {})}
    return ThreadQuery(
        status=body.status,
        metadata=metadata or None,
        values=body.values,
        ids=body.ids,
        limit=body.limit,
        offset=body.offset,
        sort_by=body.sort_by or "created_at",
        sort_order=body.sort_order or "desc",
    )


@router.post("/threads/search")
async def search_threads(request: Request, body: ThreadSearch) -> list[dict[str, Any]]:
    """Threads matching metadata, values, status or ids; newest first by default."""
    filters = await authorize(request, "threads", "search", body.model_dump())
    found = await core_of(request).search_threads(_query(body, filters))
    out = [pick(thread_json(t), body.select) for t in found]
    if body.extract:
        for doc, record in zip(out, found, strict=True):
            doc["extracted"] = {
                alias: _extract(thread_json(record), path) for alias, path in body.extract.items()
            }
    return out


def _extract(doc: Any, path: str) -> Any:
    """The value at a dotted path (`values.amount`, `metadata.user`); None where missing."""
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif (
            isinstance(doc, list)
            and part.lstrip("-").isdigit()
            and -len(doc) <= int(part) < len(doc)
        ):
            doc = doc[int(part)]
        else:
            return None
    return doc


@router.post("/threads/count")
async def count_threads(request: Request, body: ThreadSearch) -> int:
    filters = await authorize(request, "threads", "search", body.model_dump())
    return await core_of(request).records.count_threads(_query(body, filters))


@router.post("/threads/prune")
async def prune_threads(request: Request, body: ThreadPrune) -> dict[str, int]:
    """Delete the threads (`delete`), or only their checkpoints older than the latest
    (`keep_latest`); unknown ids are skipped. Answers how many were pruned."""
    filters = await authorize(request, "threads", "delete", {"thread_ids": body.thread_ids})
    core = core_of(request)
    pruned = 0
    for thread_id in dict.fromkeys(body.thread_ids):
        try:
            record = await core.thread(thread_id, filters)
            if body.strategy == "delete":
                await core.delete_thread(thread_id, filters)
            else:
                await core.saver.prune(record.thread_id, keep_last=1)
        except ApiError as exc:
            if exc.status != 404:
                raise
            continue
        pruned += 1
    return {"pruned_count": pruned}


@router.get("/threads/{thread_id}")
async def get_thread(request: Request, thread_id: str) -> dict[str, Any]:
    """The thread with its status (idle, busy, interrupted, error), values and interrupts."""
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    return thread_json(await core_of(request).thread(thread_id, filters))


@router.patch("/threads/{thread_id}", response_model=None)
async def patch_thread(
    request: Request,
    thread_id: str,
    body: ThreadPatch,
    prefer: str | None = Header(None),
) -> dict[str, Any] | Response:
    """Merge metadata into the thread's (`Prefer: return=minimal`: answer 204, no body)."""
    value: dict[str, Any] = {"thread_id": thread_id, "metadata": dict(body.metadata)}
    filters = await authorize(request, "threads", "update", value)
    record = await core_of(request).update_thread_metadata(thread_id, value["metadata"], filters)
    if prefer is not None and "return=minimal" in prefer:
        return Response(status_code=204)
    return thread_json(record)


@router.delete("/threads/{thread_id}", status_code=204)
async def delete_thread(request: Request, thread_id: str) -> Response:
    """Delete the thread, its checkpoints, runs and event logs."""
    filters = await authorize(request, "threads", "delete", {"thread_id": thread_id})
    await core_of(request).delete_thread(thread_id, filters)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/copy")
async def copy_thread(request: Request, thread_id: str) -> dict[str, Any]:
    """A new thread with the same metadata and checkpoints."""
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    await authorize(request, "threads", "create", {"thread_id": None, "metadata": {}})
    core = core_of(request)
    copied = await core.copy_thread(await core.thread(thread_id, filters))
    return thread_json(copied, full=False)


@router.get("/threads/{thread_id}/state")
async def get_state(
    request: Request, thread_id: str, subgraphs: bool = Query(False)
) -> dict[str, Any]:
    """The thread's state at its head."""
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    core = core_of(request)
    return await core.state(await core.thread(thread_id, filters), subgraphs=subgraphs)


@router.get("/threads/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    request: Request, thread_id: str, checkpoint_id: str, subgraphs: bool = Query(False)
) -> dict[str, Any]:
    """The thread's state at one checkpoint."""
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    core = core_of(request)
    record = await core.thread(thread_id, filters)
    return await core.state(record, {"checkpoint_id": checkpoint_id}, subgraphs=subgraphs)


@router.post("/threads/{thread_id}/state/checkpoint")
async def post_state_at(request: Request, thread_id: str, body: CheckpointRef) -> dict[str, Any]:
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    core = core_of(request)
    record = await core.thread(thread_id, filters)
    return await core.state(record, body.checkpoint, subgraphs=body.subgraphs)


@router.post("/threads/{thread_id}/state")
async def update_state(request: Request, thread_id: str, body: ThreadStateUpdate) -> dict[str, Any]:
    """Write values as if `as_node` returned them (409 while a run holds the thread)."""
    filters = await authorize(request, "threads", "update", {"thread_id": thread_id})
    core = core_of(request)
    record = await core.thread(thread_id, filters)
    checkpoint = body.checkpoint or (
        {"checkpoint_id": body.checkpoint_id} if body.checkpoint_id else None
    )
    return await core.update_state(record, body.values, as_node=body.as_node, checkpoint=checkpoint)


@router.post("/threads/{thread_id}/history")
async def post_history(
    request: Request, thread_id: str, body: HistoryRequest
) -> list[dict[str, Any]]:
    """The thread's checkpoints, newest first."""
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    core = core_of(request)
    record = await core.thread(thread_id, filters)
    found = await core.history(
        record,
        limit=body.limit,
        before=_checkpoint_ref(body.before),
        metadata=body.metadata,
        checkpoint=body.checkpoint,
    )
    return [pick(s, body.select) for s in found]


@router.get("/threads/{thread_id}/history")
async def get_history(
    request: Request,
    thread_id: str,
    limit: int = Query(10, ge=1, le=1000),
    before: str | None = None,
) -> list[dict[str, Any]]:
    filters = await authorize(request, "threads", "read", {"thread_id": thread_id})
    core = core_of(request)
    record = await core.thread(thread_id, filters)
    return await core.history(
        record, limit=limit, before={"checkpoint_id": before} if before else None
    )
