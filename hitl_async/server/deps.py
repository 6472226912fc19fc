"""What the routes take from the request: the core, the run service, and the caller's rights."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from hitl_async.server.auth import Authorizer
from hitl_async.server.core import ServerCore
from hitl_async.server.runs import RunService

__all__ = ["authorize", "core_of", "runs_of"]


def core_of(request: Request) -> ServerCore:
    core: ServerCore = request.app.state.core
    return core


def runs_of(request: Request) -> RunService:
    service: RunService = request.app.state.runs
    return service


async def authorize(
    request: Request, resource: str, action: str, value: dict[str, Any]
) -> dict[str, Any] | None:
    """The caller's metadata filter for this action (None: sees everything); 403 if refused."""
    auth: Authorizer = request.app.state.auth
    filters = await auth.authorize(getattr(request.state, "user", None), resource, action, value)
    return filters
