"""The web inbox at `/ui`: one static page (checked into the package, no build step) that lists
pending interrupts from the inbox index and answers them through the API's own routes."""

from __future__ import annotations

import time
from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from hitl_async.checkpoint.capabilities import InboxStore
from hitl_async.inbox import list_pending
from hitl_async.server.deps import authorize, core_of
from hitl_async.server.encoding import jsonable
from hitl_async.server.errors import unprocessable
from hitl_async.server.records import matches_filter

__all__ = ["router"]

router = APIRouter(tags=["ui"])


@router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
async def inbox_page() -> HTMLResponse:
    """The inbox page (its data comes from `/ui/api/inbox` and the threads/runs routes)."""
    page = files("hitl_async.server").joinpath("ui/inbox.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.get("/ui/api/inbox")
async def inbox(
    request: Request,
    graph: str | None = None,
    node: str | None = None,
    due_within: float | None = Query(None, description="Only deadlines within N seconds."),
    limit: int = Query(200, ge=1, le=1000),
) -> dict[str, Any]:
    """Pending interrupts across threads, oldest first, that the caller may see."""
    core = core_of(request)
    if graph is not None and graph not in core.graphs:
        raise unprocessable(f"unknown graph {graph!r}; graphs: {sorted(core.graphs)}")
    filters = await authorize(request, "threads", "search", {"metadata": {}})
    serde = next(iter(core.graphs.values())).serde
    saver = core.saver
    assert isinstance(saver, InboxStore)  # (`hitl serve` requires every capability)
    pending = await list_pending(
        saver,
        graph=graph,
        node=node or None,
        due_before=None if due_within is None else time.time() + due_within,
        limit=limit,
        serde=serde,
    )
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for p in pending:
        if p.graph not in core.graphs or p.interrupt_id in seen:
            continue
        seen.add(p.interrupt_id)
        if filters:
            record = await core.records.get_thread(p.thread_id)
            if record is None or not matches_filter(record.metadata, filters):
                continue
        items.append(
            {
                "thread_id": p.thread_id,
                "interrupt_id": p.interrupt_id,
                "graph": p.graph,
                "node": p.node,
                "value": jsonable(p.value),
                "created_at": p.created_at,
                "deadline": p.deadline,
            }
        )
    return {"graphs": sorted(core.graphs), "items": items}
