"""`/ok`, `/info`, and the routes of what is not served, which answer 404 as LangGraph's
server does where they are not mounted: crons (`hitl serve` runs no scheduler; `/info` says
`crons: false`) and the v2 thread streaming protocol (`threads.stream`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hitl_async.server.errors import ApiError

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


_NO_CRONS = (
    "crons are not supported by hitl serve (/info flags.crons is false); schedule runs "
    "with an external scheduler calling runs.create"
)


@router.api_route("/runs/crons", methods=["POST"], tags=["crons"])
@router.api_route("/runs/crons/search", methods=["POST"], tags=["crons"])
@router.api_route("/runs/crons/count", methods=["POST"], tags=["crons"])
@router.api_route("/threads/{thread_id}/runs/crons", methods=["POST"], tags=["crons"])
@router.api_route("/runs/crons/{cron_id}", methods=["GET", "PATCH", "DELETE"], tags=["crons"])
async def crons() -> None:
    """Not served: 404, as LangGraph's server answers where its cron routes are not mounted."""
    raise ApiError(404, _NO_CRONS)


_NO_V2_STREAMING = (
    "the v2 thread streaming protocol (threads.stream) is not supported by hitl serve; use "
    "runs.stream, runs.join_stream or threads.join_stream"
)


@router.api_route("/threads/{thread_id}/commands", methods=["POST"], tags=["threads"])
@router.api_route("/threads/{thread_id}/stream/events", methods=["POST"], tags=["threads"])
async def v2_streaming() -> None:
    """Not served: 404, as LangGraph's server answers with v2 event streaming turned off."""
    raise ApiError(404, _NO_V2_STREAMING)
