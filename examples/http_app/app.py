"""Expense approvals over HTTP: a Starlette app that starts threads and accepts a manager's
decisions, while a worker process (`python -m examples.http_app.worker`) runs them.

The app never runs the graph itself: every run is queued with `graph.asubmit()` and answered
with 202 and a run id; `GET /runs/{thread_id}/{run_id}` tells how it went.

    POST /expenses                       {"amount": 120.5, "who": "ada"} -> 202 {thread_id, run_id}
    GET  /expenses/{thread_id}           values, next nodes, pending interrupts (with ids)
    GET  /inbox[?limit=N&thread_id=T]    interrupts waiting for a manager, oldest first
    POST /expenses/{thread_id}/decision  {"interrupt_id": "...", "answer": "yes"|"no"} -> 202
    GET  /runs/{thread_id}/{run_id}      queued | running | done | failed | cancelled (+ result)
    GET  /healthz

Errors are JSON, `{"error": code, "detail": message}`: 400 for a bad body or query, 404 for an
unknown thread or run, 409 for the engine's strict resume errors (`ResumeError`: the interrupt
is not pending, the thread is not paused) and for a busy thread.

The store is `$HITL_STORE` (+ `$HITL_STORE_SCHEMA` for a PostgreSQL schema), set up on startup
and closed on shutdown: `uvicorn examples.http_app.app:app`.
"""

from __future__ import annotations

import contextlib
import math
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hitl_async import (
    Command,
    CompiledStateGraph,
    HitlError,
    Interrupt,
    NoPendingInterruptError,
    ResumeError,
    RunCancelledError,
    RunFailedError,
    StateSnapshot,
    ThreadBusyError,
    UnknownInterruptError,
)
from hitl_async.constants import INTERRUPT

from .workflow import graph as graph_from_env

__all__ = ["ApiError", "app", "create_app"]

ANSWERS = ("yes", "no")
INTERRUPT_ID = re.compile(r"[0-9a-f]{32}")
MAX_INBOX_PAGE = 500


class ApiError(Exception):
    """A client error, answered as `{"error": code, "detail": detail}` with `status`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


# -- helpers -------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """`value` with interrupts, tuples and sets turned into JSON types (anything else: str)."""
    if isinstance(value, Interrupt):
        return {"id": value.id, "value": jsonable(value.value), "deadline": value.deadline}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def graph_of(request: Request) -> CompiledStateGraph:
    """The graph the lifespan opened."""
    graph: CompiledStateGraph = request.state.graph
    return graph


def config_for(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


async def json_object(request: Request, fields: set[str]) -> dict[str, Any]:
    """The body as a JSON object with only `fields` (400 otherwise)."""
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "bad_body", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_body", "the body must be a JSON object")
    unexpected = sorted(set(body) - fields)
    if unexpected:
        raise ApiError(
            400, "bad_body", f"unexpected field(s) {unexpected}; expected {sorted(fields)}"
        )
    return body


async def existing_state(graph: CompiledStateGraph, thread_id: str) -> StateSnapshot:
    """The thread's state at its head; 404 when the store has no checkpoint of it."""
    snapshot = await graph.aget_state(config_for(thread_id))
    if snapshot.metadata is None:
        raise ApiError(
            404,
            "unknown_thread",
            f"no thread {thread_id!r} in the store (a thread appears once a worker has "
            "started its first run; see GET /runs/{thread_id}/{run_id})",
        )
    return snapshot


def describe_state(thread_id: str, snapshot: StateSnapshot) -> dict[str, Any]:
    return {
        "thread_id": thread_id,
        "values": jsonable(snapshot.values),
        "next": list(snapshot.next),
        "interrupts": [jsonable(i) for i in snapshot.interrupts],
        "paused": bool(snapshot.interrupts),
        "done": not snapshot.next,
        "updated_at": snapshot.created_at,
    }


# -- endpoints -----------------------------------------------------------------------------------


async def submit_expense(request: Request) -> JSONResponse:
    """Start a thread for a new expense: queue its first run."""
    body = await json_object(request, {"amount", "who"})
    amount, who = body.get("amount"), body.get("who")
    if (
        isinstance(amount, bool)
        or not isinstance(amount, int | float)
        or not math.isfinite(amount)
        or amount <= 0
    ):
        raise ApiError(400, "bad_body", "amount must be a positive number")
    if not isinstance(who, str) or not who.strip():
        raise ApiError(400, "bad_body", "who must be a non-empty string")
    thread_id = uuid.uuid4().hex
    handle = await graph_of(request).asubmit(
        {"amount": float(amount), "who": who.strip()}, config_for(thread_id)
    )
    return JSONResponse(
        {"thread_id": thread_id, "run_id": handle.id},
        status_code=202,
        headers={"Location": f"/runs/{thread_id}/{handle.id}"},
    )


async def get_expense(request: Request) -> JSONResponse:
    """The thread's values, next nodes and pending interrupts."""
    thread_id = request.path_params["thread_id"]
    snapshot = await existing_state(graph_of(request), thread_id)
    return JSONResponse(describe_state(thread_id, snapshot))


async def get_inbox(request: Request) -> JSONResponse:
    """Interrupts of this graph waiting for an answer, oldest first."""
    text = request.query_params.get("limit", "100")
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_INBOX_PAGE:
        raise ApiError(400, "bad_query", f"limit must be an integer from 1 to {MAX_INBOX_PAGE}")
    pending = await graph_of(request).ainbox(
        thread_id=request.query_params.get("thread_id"), limit=limit
    )
    return JSONResponse(
        {
            "pending": [
                {
                    "thread_id": p.thread_id,
                    "interrupt_id": p.interrupt_id,
                    "value": jsonable(p.value),
                    "node": p.node,
                    "created_at": p.created_at,
                    "deadline": p.deadline,
                }
                for p in pending
            ]
        }
    )


async def submit_decision(request: Request) -> JSONResponse:
    """Queue the resume of one pending interrupt with the manager's answer.

    The interrupt is checked here so a bad decision fails at once (409, the engine's own
    `ResumeError`); the worker checks again under the thread's lease, so of two racing answers
    only one is applied and the other's run ends `failed` with a `ResumeError`.
    """
    thread_id = request.path_params["thread_id"]
    body = await json_object(request, {"interrupt_id", "answer"})
    interrupt_id, answer = body.get("interrupt_id"), body.get("answer")
    if not isinstance(interrupt_id, str) or not INTERRUPT_ID.fullmatch(interrupt_id):
        raise ApiError(
            400,
            "bad_body",
            "interrupt_id must be an interrupt id (32 lowercase hex digits) as listed by "
            "GET /inbox or GET /expenses/{thread_id}",
        )
    if answer not in ANSWERS:
        raise ApiError(400, "bad_body", f"answer must be one of {list(ANSWERS)}")
    graph = graph_of(request)
    snapshot = await existing_state(graph, thread_id)
    if not snapshot.interrupts:
        raise NoPendingInterruptError(thread_id, exists=True, next_nodes=snapshot.next)
    if interrupt_id not in {i.id for i in snapshot.interrupts}:
        raise UnknownInterruptError(thread_id, [interrupt_id], snapshot.interrupts)
    handle = await graph.asubmit(Command(resume={interrupt_id: answer}), config_for(thread_id))
    return JSONResponse(
        {"thread_id": thread_id, "run_id": handle.id, "interrupt_id": interrupt_id},
        status_code=202,
        headers={"Location": f"/runs/{thread_id}/{handle.id}"},
    )


async def get_run(request: Request) -> JSONResponse:
    """A queued run's status; once done, what it returned (paused runs list their interrupts)."""
    thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
    handle = graph_of(request).handle(run_id, thread_id)
    try:
        queued = await handle.request()
    except HitlError:
        queued = None
    if queued is None or queued.thread_id != thread_id:
        raise ApiError(404, "unknown_run", f"no run {run_id!r} on thread {thread_id!r}")
    out: dict[str, Any] = {
        "thread_id": thread_id,
        "run_id": run_id,
        "status": queued.status,
        "attempts": queued.attempts,
    }
    if queued.status == "done":
        result = await handle.result(timeout=5)
        values = dict(result or {})
        interrupts = values.pop(INTERRUPT, [])
        out.update(
            result=jsonable(values),
            paused=bool(interrupts),
            interrupts=[jsonable(i) for i in interrupts],
        )
    elif queued.status in ("failed", "cancelled"):
        try:
            await handle.result(timeout=5)
        except (RunFailedError, RunCancelledError) as exc:
            out["error"] = getattr(exc, "error", None) or str(exc)
    return JSONResponse(out)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "graph": graph_of(request).name})


# -- errors --------------------------------------------------------------------------------------


async def on_error(request: Request, exc: Exception) -> JSONResponse:
    """Every error as JSON: ours, Starlette's (404/405 routes), the engine's conflicts, 500."""
    if isinstance(exc, ApiError):
        return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)
    if isinstance(exc, HTTPException):
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        return JSONResponse(
            {"error": code, "detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )
    if isinstance(exc, ResumeError):
        return JSONResponse(
            {
                "error": type(exc).__name__,
                "detail": str(exc),
                "thread_id": exc.thread_id,
                "pending": [i.id for i in exc.pending],
            },
            status_code=409,
        )
    if isinstance(exc, ThreadBusyError):
        return JSONResponse({"error": "ThreadBusyError", "detail": str(exc)}, status_code=409)
    # Starlette re-raises it after this response, so the server logs the traceback.
    return JSONResponse({"error": "internal", "detail": "internal server error"}, status_code=500)


# -- the app -------------------------------------------------------------------------------------


def create_app(graph: CompiledStateGraph | None = None) -> Starlette:
    """The app serving `graph` (default: built from `$HITL_STORE` on startup). Its store is set
    up on startup and closed on shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        served = graph if graph is not None else graph_from_env()
        saver = served.checkpointer
        if saver is None:
            raise RuntimeError("the app needs a graph compiled with a shared checkpointer")
        await saver.setup()
        try:
            yield {"graph": served}
        finally:
            await saver.aclose()

    return Starlette(
        routes=[
            Route("/expenses", submit_expense, methods=["POST"]),
            Route("/expenses/{thread_id}", get_expense, methods=["GET"]),
            Route("/expenses/{thread_id}/decision", submit_decision, methods=["POST"]),
            Route("/inbox", get_inbox, methods=["GET"]),
            Route("/runs/{thread_id}/{run_id}", get_run, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={
            ApiError: on_error,
            HTTPException: on_error,
            ResumeError: on_error,
            ThreadBusyError: on_error,
            Exception: on_error,
        },
        lifespan=lifespan,
    )


app = create_app()
