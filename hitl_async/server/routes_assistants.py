"""The assistants routes: search, count, get (by id or graph name), schemas, graph, subgraphs,
and the stored configurations' create, update, delete, versions and latest."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from hitl_async.server.assistants import (
    AssistantChange,
    assistant_json,
    create_assistant,
    delete_assistant,
    set_latest_version,
    update_assistant,
    versions_of,
)
from hitl_async.server.core import pick
from hitl_async.server.deps import authorize, core_of
from hitl_async.server.errors import unprocessable
from hitl_async.server.records import ThreadQuery
from hitl_async.server.schemas import (
    AssistantCreate,
    AssistantLatest,
    AssistantPatch,
    AssistantSearch,
    AssistantVersions,
)

__all__ = ["router"]

router = APIRouter(tags=["assistants"])


@router.post("/assistants")
async def create(request: Request, body: AssistantCreate) -> dict[str, Any]:
    """A configuration over one of the graphs (409 if the id exists, unless `do_nothing`)."""
    value = body.model_dump()
    await authorize(request, "assistants", "create", value)
    change = AssistantChange(
        graph_id=body.graph_id,
        config=body.config,
        context=body.context,
        metadata=value.get("metadata"),
        name=body.name,
        description=body.description,
    )
    record = await create_assistant(
        core_of(request), change, assistant_id=body.assistant_id, if_exists=body.if_exists
    )
    return assistant_json(record)


@router.post("/assistants/search")
async def search(request: Request, body: AssistantSearch) -> JSONResponse:
    """Assistants, newest first, filtered by graph, metadata or name; `X-Pagination-Next`
    names the next page's offset when there is one (`response_format="object"` reads it)."""
    await authorize(request, "assistants", "search", body.model_dump())
    found = await core_of(request).search_assistants(
        graph_id=body.graph_id,
        metadata=body.metadata,
        name=body.name,
        limit=body.limit + 1,
        offset=body.offset,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
    )
    page = found[: body.limit]
    headers = {"X-Pagination-Total": str(body.offset + len(found))}
    if len(found) > body.limit:
        headers["X-Pagination-Next"] = str(body.offset + body.limit)
    return JSONResponse([pick(assistant_json(a), body.select) for a in page], headers=headers)


@router.post("/assistants/count")
async def count(request: Request, body: AssistantSearch) -> int:
    await authorize(request, "assistants", "search", body.model_dump())
    found = await core_of(request).search_assistants(
        graph_id=body.graph_id,
        metadata=body.metadata,
        name=body.name,
        limit=1 << 30,
    )
    return len(found)


@router.get("/assistants/{assistant_id}")
async def get(request: Request, assistant_id: str) -> dict[str, Any]:
    """An assistant by id (or by graph name)."""
    await authorize(request, "assistants", "read", {"assistant_id": assistant_id})
    return assistant_json(await core_of(request).assistant(assistant_id))


@router.patch("/assistants/{assistant_id}")
async def update(request: Request, assistant_id: str, body: AssistantPatch) -> dict[str, Any]:
    """A new version: metadata merged into the assistant's, the other given fields replaced."""
    value = {"assistant_id": assistant_id, **body.model_dump()}
    await authorize(request, "assistants", "update", value)
    change = AssistantChange(
        graph_id=body.graph_id,
        config=body.config,
        context=body.context,
        metadata=value.get("metadata"),
        name=body.name,
        description=body.description,
    )
    return assistant_json(await update_assistant(core_of(request), assistant_id, change))


@router.delete("/assistants/{assistant_id}", status_code=204)
async def delete(
    request: Request, assistant_id: str, delete_threads: bool = Query(False)
) -> Response:
    """Delete the assistant; with `delete_threads`, also the threads it ran on (those whose
    metadata names it, as runs stamp it) that the caller may delete."""
    await authorize(request, "assistants", "delete", {"assistant_id": assistant_id})
    core = core_of(request)
    await delete_assistant(core, assistant_id)
    if delete_threads:
        filters = await authorize(request, "threads", "delete", {"assistant_id": assistant_id})
        query = ThreadQuery(metadata={**(filters or {}), "assistant_id": assistant_id}, limit=500)
        deleted: set[str] = set()
        while found := [t for t in await core.search_threads(query) if t.thread_id not in deleted]:
            for thread in found:
                await core.delete_thread(thread.thread_id, filters)
                deleted.add(thread.thread_id)
    return Response(status_code=204)


@router.post("/assistants/{assistant_id}/versions")
async def versions(
    request: Request, assistant_id: str, body: AssistantVersions
) -> list[dict[str, Any]]:
    """The assistant's versions, newest first."""
    await authorize(request, "assistants", "read", {"assistant_id": assistant_id})
    return await versions_of(
        core_of(request),
        assistant_id,
        metadata=body.metadata,
        limit=body.limit,
        offset=body.offset,
    )


@router.post("/assistants/{assistant_id}/latest")
async def latest(request: Request, assistant_id: str, body: AssistantLatest) -> dict[str, Any]:
    """Make one of the assistant's versions the current one."""
    await authorize(request, "assistants", "update", {"assistant_id": assistant_id})
    record = await set_latest_version(core_of(request), assistant_id, body.version)
    return assistant_json(record)


@router.get("/assistants/{assistant_id}/schemas")
async def get_schemas(request: Request, assistant_id: str) -> dict[str, Any]:
    """JSON schemas of the assistant's graph."""
    await authorize(request, "assistants", "read", {"assistant_id": assistant_id})
    core = core_of(request)
    return core.schemas((await core.assistant(assistant_id)).graph_id)


@router.get("/assistants/{assistant_id}/graph")
async def get_graph(request: Request, assistant_id: str, xray: str = "false") -> dict[str, Any]:
    """The graph's nodes and edges; `xray` (true, or how many levels) draws subgraphs inside
    their node."""
    await authorize(request, "assistants", "read", {"assistant_id": assistant_id})
    core = core_of(request)
    return core.drawing((await core.assistant(assistant_id)).graph_id, _xray(xray))


def _xray(value: str) -> bool | int:
    """`xray` as LangGraph's server reads it: true/false, or a depth."""
    if value.lower() in ("", "true", "false"):
        return value.lower() == "true"
    try:
        depth = int(value)
    except ValueError:
        raise unprocessable(f"xray must be true, false or a depth >= 1, not {value!r}") from None
    if depth <= 0:
        raise unprocessable(f"xray must be true, false or a depth >= 1, not {depth}")
    return depth


async def _subgraphs(request: Request, assistant_id: str, recurse: bool) -> dict[str, Any]:
    await authorize(request, "assistants", "read", {"assistant_id": assistant_id})
    core = core_of(request)
    return core.subgraph_schemas((await core.assistant(assistant_id)).graph_id, recurse=recurse)


@router.get("/assistants/{assistant_id}/subgraphs")
async def get_subgraphs(
    request: Request, assistant_id: str, recurse: bool = False
) -> dict[str, Any]:
    """Schemas of the graph's subgraphs, by namespace (nested ones too with `recurse`)."""
    return await _subgraphs(request, assistant_id, recurse)


@router.get("/assistants/{assistant_id}/subgraphs/{namespace}")
async def get_subgraph(
    request: Request, assistant_id: str, namespace: str, recurse: bool = False
) -> dict[str, Any]:
    """The subgraph at one namespace (an empty object when there is none)."""
    found = await _subgraphs(request, assistant_id, recurse)
    return {k: v for k, v in found.items() if k == namespace}
