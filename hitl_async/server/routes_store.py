"""The `/store` routes: LangGraph's long-term memory API (`client.store.put_item`, `get_item`,
`delete_item`, `search_items`, `list_namespaces`) over the server's `hitl_async.store` — the same
store the graphs' nodes see — with LangGraph's shapes and status codes.

An `auth.path` object's `@auth.on.store` handlers run first and may rewrite the namespace (to
scope a user's memories under their id); the result is checked again.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hitl_async.server.deps import authorize, core_of
from hitl_async.server.errors import ApiError, unprocessable
from hitl_async.server.schemas import require_storable_json
from hitl_async.store.base import NOT_PROVIDED, BaseStore
from hitl_async.store.codec import RESERVED_ROOT
from hitl_async.store.errors import InvalidFilterError, InvalidStoreRequestError, StoreValueError

__all__ = ["router"]

router = APIRouter(tags=["store"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        return require_storable_json(data)


class StorePut(_Body):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = None


class StoreDelete(_Body):
    namespace: list[str] | None = None
    key: str


class StoreSearch(_Body):
    namespace_prefix: list[str] | None = None
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    query: str | None = None
    refresh_ttl: bool | None = None


class StoreListNamespaces(_Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(None, ge=0)
    limit: int = 100
    offset: int = 0


def _store(request: Request) -> BaseStore:
    store = core_of(request).store
    if store is None:
        raise ApiError(404, "this server has no long-term store")
    return store


def _labels(namespace: Any, *, put: bool = False) -> tuple[str, ...]:
    """The namespace checked as LangGraph's server checks it: a label that is empty or holds a
    '.' is 422; with `put`, an empty namespace or the reserved root label is 400."""
    if not isinstance(namespace, list | tuple) or not all(isinstance(x, str) for x in namespace):
        raise unprocessable(f"namespace must be a list of labels, got {namespace!r}")
    labels = tuple(namespace)
    for label in labels:
        if not label or "." in label:
            raise unprocessable(
                f"Namespace label {label!r} must be a non-empty string without periods"
            )
    if put and not labels:
        raise ApiError(400, "Namespace cannot be empty.")
    if put and labels[0] == RESERVED_ROOT:
        raise ApiError(400, f'Root label for namespace cannot be "{RESERVED_ROOT}". Got: {labels}')
    return labels


def _refused(exc: Exception) -> ApiError:
    """A store error as the HTTP error LangGraph answers (bad filter 400, bad value 422)."""
    if isinstance(exc, InvalidFilterError):
        return ApiError(400, str(exc))
    return unprocessable(str(exc))


@router.put("/store/items", status_code=204)
async def put_item(request: Request, body: StorePut) -> Response:
    """Store (replace) the item at namespace/key; `ttl` in minutes (absent: the store's default,
    null: never expires), `index` the fields to embed (false: none)."""
    store = _store(request)
    value: dict[str, Any] = {
        "namespace": _labels(body.namespace, put=True),
        "key": body.key,
        "value": body.value,
        "index": body.index,
    }
    await authorize(request, "store", "put", value)
    namespace = _labels(value["namespace"], put=True)
    ttl = body.ttl if "ttl" in body.model_fields_set else NOT_PROVIDED
    try:
        await store.aput(namespace, value["key"], value["value"], value["index"], ttl=ttl)
    except (InvalidStoreRequestError, StoreValueError) as exc:
        raise _refused(exc) from exc
    return Response(status_code=204)


@router.get("/store/items")
async def get_item(request: Request) -> Any:
    """The item at `?namespace=a.b&key=k` (labels joined by '.'), or null."""
    store = _store(request)
    params = request.query_params
    key = params.get("key")
    if not key:
        return JSONResponse({"error": "Key is required"}, status_code=400)
    refresh = params.get("refresh_ttl")
    value: dict[str, Any] = {
        "namespace": _labels(params.get("namespace", "").split(".")),
        "key": key,
    }
    await authorize(request, "store", "get", value)
    namespace = _labels(value["namespace"])
    try:
        item = await store.aget(
            namespace,
            value["key"],
            refresh_ttl=None if refresh is None else refresh.lower() == "true",
        )
    except InvalidStoreRequestError as exc:
        raise _refused(exc) from exc
    return None if item is None else item.dict()


@router.delete("/store/items", status_code=204)
async def delete_item(request: Request, body: StoreDelete) -> Response:
    """Delete the item at namespace/key (204 whether or not it existed)."""
    store = _store(request)
    value: dict[str, Any] = {"namespace": _labels(body.namespace or []), "key": body.key}
    await authorize(request, "store", "delete", value)
    namespace = _labels(value["namespace"])
    if namespace:  # nothing is ever stored under the empty namespace
        try:
            await store.adelete(namespace, value["key"])
        except InvalidStoreRequestError as exc:
            raise _refused(exc) from exc
    return Response(status_code=204)


@router.post("/store/items/search")
async def search_items(request: Request, body: StoreSearch) -> dict[str, Any]:
    """Items under `namespace_prefix` matching `filter` (or ranked by `query` when the store
    has an index): `{"items": [...]}`, each with its `score`."""
    store = _store(request)
    value: dict[str, Any] = {
        "namespace": _labels(body.namespace_prefix or []),
        "filter": body.filter,
        "limit": body.limit,
        "offset": body.offset,
        "query": body.query,
    }
    await authorize(request, "store", "search", value)
    try:
        found = await store.asearch(
            _labels(value["namespace"]),
            query=value["query"],
            filter=value["filter"],
            limit=value["limit"],
            offset=value["offset"],
            refresh_ttl=body.refresh_ttl,
        )
    except InvalidStoreRequestError as exc:
        raise _refused(exc) from exc
    return {"items": [item.dict() for item in found]}


@router.post("/store/namespaces")
async def list_namespaces(request: Request, body: StoreListNamespaces) -> dict[str, Any]:
    """Namespaces holding items, matched by `prefix`/`suffix` ("*" matches any one label) and
    truncated to `max_depth`: `{"namespaces": [[...], ...]}`."""
    store = _store(request)
    value: dict[str, Any] = {
        "namespace": tuple(body.prefix) if body.prefix is not None else None,
        "suffix": tuple(body.suffix) if body.suffix is not None else None,
        "max_depth": body.max_depth,
        "limit": body.limit,
        "offset": body.offset,
    }
    await authorize(request, "store", "list_namespaces", value)
    try:
        found = await store.alist_namespaces(
            prefix=value["namespace"],
            suffix=value["suffix"],
            max_depth=value["max_depth"],
            limit=value["limit"],
            offset=value["offset"],
        )
    except InvalidStoreRequestError as exc:
        raise _refused(exc) from exc
    return {"namespaces": [list(ns) for ns in found]}
