"""The ASGI app of `hitl serve`: LangGraph's HTTP API (the routes `langgraph-sdk` calls) over a
`ServerCore`, with auth, CORS, request size limits and an in-process run executor.

`create_app(core, ...)` builds it; `uvicorn` serves it. OpenAPI at `/openapi.json`, docs at
`/docs`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from hitl_async.errors import (
    EmptyInputError,
    InvalidConfigError,
    InvalidUpdateError,
    ResumeError,
    ThreadBusyError,
)
from hitl_async.server.auth import Authorizer
from hitl_async.server.core import ServerCore
from hitl_async.server.errors import ApiError
from hitl_async.server.executor import RunExecutor
from hitl_async.server.routes_assistants import router as assistants_router
from hitl_async.server.routes_misc import router as misc_router
from hitl_async.server.routes_runs import router as runs_router
from hitl_async.server.routes_store import router as store_router
from hitl_async.server.routes_threads import router as threads_router
from hitl_async.server.routes_ui import router as ui_router
from hitl_async.server.runs import RunService

__all__ = ["DEFAULT_MAX_BODY", "create_app"]

log = logging.getLogger("hitl_async.server")

DEFAULT_MAX_BODY = 10 * 1024 * 1024
_OPEN_PATHS = frozenset({"/ok", "/info", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/ui"})


class _BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, whether declared or streamed (and
    paths with a NUL character, which name nothing, with 404)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"]:
            # no id holds a NUL (PostgreSQL cannot store one: a lookup of it was a 500)
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        seen = 0

        async def limited() -> MutableMapping[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ApiError(413, f"request body over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over {self.limit} bytes"}, status_code=413
        )
        await response({"type": "http"}, _no_receive, send)


class _Authenticate:
    """Authenticate every request but the open paths; the user goes to `request.state.user`.
    A body the authenticate handler read is handed on to the route unchanged."""

    def __init__(self, app: ASGIApp, auth: Authorizer) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPEN_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            user = await self.auth.authenticate(request)
        except ApiError as exc:
            await _error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})["user"] = user
        body = getattr(request, "_body", None)
        if body is None:
            await self.app(scope, receive, send)
            return
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _no_receive() -> MutableMapping[str, Any]:
    return {"type": "http.disconnect"}


_BAD_INPUT = (InvalidConfigError, InvalidUpdateError, EmptyInputError)
"""The library's errors for a request it refused as given, answered 422 with the reason."""


def _error_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)
    if isinstance(exc, ThreadBusyError):
        return JSONResponse({"detail": str(exc), "error": "ThreadBusyError"}, status_code=409)
    if isinstance(exc, ResumeError):
        return JSONResponse(
            {
                "detail": str(exc),
                "error": type(exc).__name__,
                "thread_id": exc.thread_id,
                "pending": [i.id for i in exc.pending],
            },
            status_code=409,
        )
    if isinstance(exc, _BAD_INPUT):
        # the engine refused what the request asked (a checkpoint the thread does not have,
        # an unknown node, ...) before changing anything: the client's to fix, not a 500
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=422)
    log.error("internal error", exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


def create_app(
    core: ServerCore,
    *,
    authorizer: Authorizer | None = None,
    cors: dict[str, Any] | None = None,
    run_executor: bool = True,
    concurrency: int = 8,
    max_body: int = DEFAULT_MAX_BODY,
    owns_core: bool = True,
) -> FastAPI:
    """The API app over `core`. With `run_executor`, this process also executes queued runs
    (`concurrency` at once); `owns_core`: close the stores on shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await core.start()
        executor = RunExecutor(core, concurrency=concurrency, poll=1.0, grace=5.0)
        async with anyio.create_task_group() as tg:
            if run_executor:
                tg.start_soon(executor.run)
            try:
                yield
            finally:
                executor.stop()
                tg.cancel_scope.deadline = anyio.current_time() + 10
        if owns_core:
            await core.aclose()

    app = FastAPI(
        title="hitl-async server",
        description="LangGraph's HTTP API over hitl-async's durable stores.",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.core = core
    app.state.runs = RunService(core)
    app.state.auth = authorizer or Authorizer()

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(ThreadBusyError)
    async def on_busy(request: Request, exc: ThreadBusyError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(ResumeError)
    async def on_resume(request: Request, exc: ResumeError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(InvalidConfigError)
    @app.exception_handler(InvalidUpdateError)
    @app.exception_handler(EmptyInputError)
    async def on_bad_input(request: Request, exc: Exception) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable_errors(exc)
        return JSONResponse({"detail": errors, "message": error_message(errors)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    # The runs routes first: every request is matched against the routes in order, and run
    # creation and lookups are most of the traffic (no two routers' paths overlap).
    app.include_router(runs_router)
    app.include_router(threads_router)
    app.include_router(assistants_router)
    app.include_router(misc_router)
    app.include_router(store_router)
    app.include_router(ui_router)
    if cors is not None:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=cors.get("allow_origins", ["*"]),
            allow_methods=cors.get("allow_methods", ["*"]),
            allow_headers=cors.get("allow_headers", ["*"]),
            allow_credentials=bool(cors.get("allow_credentials", False)),
            expose_headers=cors.get("expose_headers", ["location", "content-location"]),
            max_age=int(cors.get("max_age", 600)),
        )
    if app.state.auth.enabled:
        app.add_middleware(_Authenticate, auth=app.state.auth)
    app.add_middleware(_BodyLimit, limit=max_body)
    return app


def error_message(errors: list[dict[str, Any]]) -> str:
    """One line per validation error, `where: what` (the string the SDK's exceptions carry as
    their message, as LangGraph's server answers one)."""
    return (
        "\n".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        or "invalid request"
    )


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Validation errors as JSON (pydantic's, without the raw input objects)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
