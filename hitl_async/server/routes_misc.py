"""`/ok`, `/info` and the assistants routes (one system assistant per graph)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hitl_async.server.core import pick
from hitl_async.server.deps import authorize, core_of
from hitl_async.server.schemas import AssistantSearch

__all__ = ["router"]

router = APIRouter()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hitl-async")
    except PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "0"


@router.get("/ok", tags=["meta"])
async def ok() -> dict[str, Any]:
    """Liveness."""
    return {"ok": True}


@router.get("/info", tags=["meta"])
async def info() -> dict[str, Any]:
    """Server version and feature flags (`strict_resume`: unknown interrupt ids are refused)."""
    return {
        "version": _version(),
        "server": "hitl-async",
        "flags": {"assistants": True, "crons": False, "langsmith": False, "strict_resume": True},
    }


@router.post("/assistants/search", tags=["assistants"])
async def search_assistants(request: Request, body: AssistantSearch) -> list[dict[str, Any]]:
    """Assistants, newest first, filtered by graph, metadata or name."""
    await authorize(request, "assistants", "search", body.model_dump())
    found = await core_of(request).search_assistants(
        graph_id=body.graph_id,
        metadata=body.metadata,
        name=body.name,
        limit=body.limit,
        offset=body.offset,
    )
    return [pick(a.to_json(), body.select) for a in found]


@router.post("/assistants/count", tags=["assistants"])
async def count_assistants(request: Request, body: AssistantSearch) -> int:
    await authorize(request, "assistants", "search", body.model_dump())
    found = await core_of(request).search_assistants(
        graph_id=body.graph_id, metadata=body.metadata, name=body.name, limit=1 << 30
    )
    return len(found)


@router.get("/assistants/{assistant_id}", tags=["assistants"])
async def get_assistant(request: Request, assistant_id: str) -> dict[str, Any]:
    """An assistant by id (or by graph name)."""
    await authorize(request, "assistants", "read", {"assistant_id": assistant_id})
    return (await core_of(request).assistant(assistant_id)).to_json()


@router.get("/assistants/{assistant_id}/schemas", tags=["assistants"])
async def get_schemas(request: Request, assistant_id: str) -> dict[str, Any]:
    """JSON schemas of the assistant's graph."""
    await authorize(request, "assistants", "read", {"assistant_id": assistant_id})
    core = core_of(request)
    return core.schemas((await core.assistant(assistant_id)).graph_id)


@router.get("/assistants/{assistant_id}/graph", tags=["assistants"])
async def get_graph(request: Request, assistant_id: str) -> dict[str, Any]:
    """The graph's nodes and edges."""
    await authorize(request, "assistants", "read", {"assistant_id": assistant_id})
    core = core_of(request)
    return core.drawing((await core.assistant(assistant_id)).graph_id)


@router.get("/assistants/{assistant_id}/subgraphs", tags=["assistants"])
async def get_subgraphs(request: Request, assistant_id: str) -> dict[str, Any]:
    """Schemas of the graph's subgraphs, by namespace."""
    await authorize(request, "assistants", "read", {"assistant_id": assistant_id})
    core = core_of(request)
    graph = core.graph((await core.assistant(assistant_id)).graph_id)
    out: dict[str, Any] = {}
    for name, spec in graph.builder.nodes.items():
        if spec.subgraph is not None:
            out[name] = {"graph_id": name, "input_schema": None, "output_schema": None}
    return out
