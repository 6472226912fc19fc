"""Who may call the API and see what: a LangGraph `Auth` object from `langgraph.json`'s
`auth.path` (its `@auth.authenticate` handler and its `@auth.on...` authorization handlers), or a
single shared bearer token (`hitl serve --auth-token`).

An authorization handler may edit the value (e.g. stamp `metadata["owner"]` on a new thread)
and return a metadata filter: the caller then only sees threads (and their runs) whose metadata
matches it. Returning False refuses the call (403).
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from hitl_async.server.errors import ApiError

__all__ = ["AuthUser", "Authorizer"]


@dataclass(frozen=True)
class AuthUser:
    """The caller, as the authenticate handler described it."""

    identity: str
    permissions: tuple[str, ...] = ()
    is_authenticated: bool = True
    display_name: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def _user_from(value: Any) -> AuthUser:
    if isinstance(value, str):
        return AuthUser(identity=value, data={"identity": value})
    if isinstance(value, Mapping):
        identity = value.get("identity")
        if not isinstance(identity, str):
            raise ApiError(500, "the authenticate handler returned a dict without 'identity'")
        return AuthUser(
            identity=identity,
            permissions=tuple(value.get("permissions") or ()),
            is_authenticated=bool(value.get("is_authenticated", True)),
            display_name=str(value.get("display_name") or identity),
            data=dict(value),
        )
    identity = getattr(value, "identity", None)
    if not isinstance(identity, str):
        raise ApiError(500, f"the authenticate handler returned {type(value).__name__}")
    return AuthUser(
        identity=identity,
        permissions=tuple(getattr(value, "permissions", ()) or ()),
        display_name=str(getattr(value, "display_name", identity)),
        data={"identity": identity},
    )


def _plain_filter(filters: Mapping[str, Any]) -> dict[str, Any]:
    """`{"owner": {"$eq": "x"}}` as `{"owner": "x"}` (the operators an equality filter uses)."""
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if isinstance(value, Mapping) and set(value) == {"$eq"}:
            value = value["$eq"]
        elif isinstance(value, Mapping) and set(value) == {"$contains"}:
            raise ApiError(500, "auth filters with $contains are not supported by hitl serve")
        out[key] = value
    return out


class Authorizer:
    """Runs the configured authentication and authorization for each request."""

    def __init__(self, auth: Any | None = None, token: str | None = None) -> None:
        self.auth = auth
        self.token = token

    @property
    def enabled(self) -> bool:
        return self.auth is not None or self.token is not None

    async def authenticate(self, request: Request) -> AuthUser | None:
        """The caller, or 401 when the credentials are missing or wrong."""
        header = request.headers.get("authorization")
        if self.token is not None:
            scheme, _, given = (header or "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given, self.token):
                raise ApiError(401, "missing or wrong bearer token (Authorization: Bearer ...)")
            return AuthUser(identity="token", permissions=("authenticated",))
        handler = getattr(self.auth, "_authenticate_handler", None)
        if handler is None:
            return None
        available: dict[str, Any] = {
            "request": request,
            "path": request.url.path,
            "method": request.method,
            "path_params": dict(request.path_params),
            "query_params": dict(request.query_params),
            "headers": {k.encode(): v.encode() for k, v in request.headers.items()},
            "authorization": header,
        }
        params = inspect.signature(handler).parameters
        if "body" in params:
            try:
                available["body"] = await request.json()
            except ValueError:
                available["body"] = None
        try:
            result = handler(**{name: available.get(name) for name in params})
            if inspect.isawaitable(result):
                result = await result
        except ApiError:
            raise
        except Exception as exc:
            status = getattr(exc, "status_code", 401)
            detail = getattr(exc, "detail", None) or str(exc) or "unauthorized"
            raise ApiError(int(status), str(detail)) from exc
        return _user_from(result)

    def _handler(self, resource: str, action: str) -> Any:
        handlers: Mapping[tuple[str, str], list[Any]] = getattr(self.auth, "_handlers", {}) or {}
        for key in ((resource, action), (resource, "*"), ("*", action), ("*", "*")):
            found = handlers.get(key)
            if found:
                return found[-1]
        globals_: list[Any] = getattr(self.auth, "_global_handlers", []) or []
        return globals_[-1] if globals_ else None

    async def authorize(
        self, user: AuthUser | None, resource: str, action: str, value: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Run the handler for (resource, action); its metadata filter (None: no filter).
        `value` may be edited in place by the handler. 403 when it refuses."""
        if self.auth is None or user is None:
            return None
        handler = self._handler(resource, action)
        if handler is None:
            return None
        from langgraph_sdk.auth.types import AuthContext

        ctx = AuthContext(
            permissions=list(user.permissions),
            user=user,  # type: ignore[arg-type]  # duck-typed like LangGraph's user
            resource=resource,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
        )
        try:
            result = handler(ctx=ctx, value=value)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            status = getattr(exc, "status_code", 403)
            detail = getattr(exc, "detail", None) or str(exc) or "forbidden"
            raise ApiError(int(status), str(detail)) from exc
        if result is False:
            raise ApiError(403, f"not allowed to {action} {resource}")
        if isinstance(result, Mapping):
            return _plain_filter(result)
        return None
