"""HTTP errors of the API: LangGraph's status codes and `{"detail": ...}` bodies, plus what a
client needs to act (the pending interrupt ids of a refused resume)."""

from __future__ import annotations

from typing import Any

from hitl_async.errors import HitlError

__all__ = ["ApiError", "conflict", "not_found", "unprocessable"]


class ApiError(HitlError):
    """Answered as `status` with body `{"detail": detail, **extra}`."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"{what} with ID {ident} not found")


def conflict(detail: str, **extra: Any) -> ApiError:
    return ApiError(409, detail, **extra)


def unprocessable(detail: str, **extra: Any) -> ApiError:
    return ApiError(422, detail, **extra)
