"""Assistants as stored configurations over a graph: create, update (each change a new
version), delete, list versions and pick the latest, as LangGraph's server does. Every
assistant, the system one of each graph too, is one record in the record store, so this works
on every store the server runs on."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from hitl_async._checkpoint import now_iso
from hitl_async.server.core import ServerCore
from hitl_async.server.errors import ApiError, conflict, not_found, unprocessable
from hitl_async.server.records import AssistantRecord, matches_filter

__all__ = [
    "AssistantChange",
    "assistant_json",
    "create_assistant",
    "delete_assistant",
    "set_latest_version",
    "update_assistant",
    "versions_of",
]

_VERSION_FIELDS = ("graph_id", "config", "context", "metadata", "name", "description")


def assistant_json(record: AssistantRecord) -> dict[str, Any]:
    """An assistant as the API answers it (no version history, no tombstone flag)."""
    return {
        "assistant_id": record.assistant_id,
        "graph_id": record.graph_id,
        "config": record.config,
        "context": record.context,
        "metadata": record.metadata,
        "name": record.name,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "version": record.version,
        "description": record.description,
    }


def _version_json(record: AssistantRecord, created_at: str) -> dict[str, Any]:
    doc = {name: getattr(record, name) for name in _VERSION_FIELDS}
    return {
        "assistant_id": record.assistant_id,
        "version": record.version,
        **doc,
        "created_at": created_at,
    }


def _history(record: AssistantRecord) -> list[dict[str, Any]]:
    """Every version of the assistant, oldest first (a record never changed has only one)."""
    return list(record.versions) or [_version_json(record, record.updated_at)]


class AssistantChange:
    """What a create or update request asks for (None: not given)."""

    def __init__(
        self,
        *,
        graph_id: str | None = None,
        config: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
    ) -> None:
        self.graph_id = graph_id
        self.config = dict(config) if config is not None else None
        self.context = dict(context) if context is not None else None
        self.metadata = dict(metadata) if metadata is not None else None
        self.name = name
        self.description = description

    def context_or_configurable(self) -> dict[str, Any] | None:
        """The context, or (as LangGraph's server does) the config's `configurable` when no
        context is given."""
        if self.context is not None:
            return self.context
        if self.config is not None:
            return dict(self.config.get("configurable") or {})
        return None


def _check_graph(core: ServerCore, graph_id: str) -> None:
    if graph_id not in core.graphs:
        raise ApiError(404, f"Graph {graph_id!r} not found. Expected one of: {sorted(core.graphs)}")


async def create_assistant(
    core: ServerCore,
    change: AssistantChange,
    *,
    assistant_id: str | None = None,
    if_exists: str | None = None,
) -> AssistantRecord:
    """A new assistant (version 1); an existing id is 409, or itself with `do_nothing`."""
    graph_id = change.graph_id or ""
    _check_graph(core, graph_id)
    now = now_iso()
    record = AssistantRecord(
        assistant_id=assistant_id or str(uuid.uuid4()),
        graph_id=graph_id,
        name=change.name or "Untitled",
        created_at=now,
        updated_at=now,
        config=change.config or {},
        context=change.context_or_configurable() or {},
        metadata=change.metadata or {},
        description=change.description,
    )
    record.versions = [_version_json(record, now)]
    existing = await core.records.get_assistant(record.assistant_id)
    if existing is not None and not existing.deleted:
        if if_exists == "do_nothing":
            return existing
        raise conflict(f"Assistant {record.assistant_id} already exists")
    await core.records.put_assistant(record)
    core.remember_assistant(record)
    return record


async def _stored(core: ServerCore, assistant_id: str) -> AssistantRecord:
    """The assistant as stored now (not a cached copy: it is about to be changed). By id only,
    as LangGraph's server takes it: a graph name is 422 here."""
    try:
        uuid.UUID(assistant_id)
    except ValueError:
        raise unprocessable("Invalid assistant ID: must be a UUID") from None
    record = await core.records.get_assistant(assistant_id)
    if record is None or record.deleted:
        raise not_found("Assistant", assistant_id)
    return record


async def update_assistant(
    core: ServerCore, assistant_id: str, change: AssistantChange
) -> AssistantRecord:
    """A new version of the assistant: metadata merged, the other given fields replaced."""
    record = await _stored(core, assistant_id)
    if change.graph_id is not None:
        _check_graph(core, change.graph_id)
    history = _history(record)
    now = now_iso()
    record.graph_id = change.graph_id or record.graph_id
    if change.config is not None:
        record.config = change.config
    context = change.context_or_configurable()
    if context is not None:
        record.context = context
    if change.metadata is not None:
        record.metadata = {**record.metadata, **change.metadata}
    if change.name is not None:
        record.name = change.name
    if change.description is not None:
        record.description = change.description
    record.version = max(v["version"] for v in history) + 1
    record.updated_at = now
    record.versions = [*history, _version_json(record, now)]
    await core.records.put_assistant(record)
    core.remember_assistant(record)
    return record


async def delete_assistant(core: ServerCore, assistant_id: str) -> None:
    """Delete the assistant (its threads and runs stay)."""
    record = await _stored(core, assistant_id)
    record.deleted = True
    record.updated_at = now_iso()
    await core.records.put_assistant(record)
    core.remember_assistant(record)


async def versions_of(
    core: ServerCore,
    assistant_id: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    limit: int = 10,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """The assistant's versions, newest first, filtered by metadata."""
    record = await _stored(core, assistant_id)
    found = [
        v
        for v in reversed(_history(record))
        if not metadata or matches_filter(v["metadata"], metadata)
    ]
    return found[offset : offset + limit]


async def set_latest_version(core: ServerCore, assistant_id: str, version: int) -> AssistantRecord:
    """Make an earlier (or later) version the current one; 404 naming the versions there are."""
    record = await _stored(core, assistant_id)
    history = _history(record)
    chosen = next((v for v in history if v["version"] == version), None)
    if chosen is None:
        known = [v["version"] for v in history]
        raise ApiError(
            404,
            f"Version {version} not found for assistant {record.assistant_id}; versions: {known}",
        )
    for name in _VERSION_FIELDS:
        setattr(record, name, chosen[name])
    record.version = version
    record.updated_at = now_iso()
    record.versions = history
    await core.records.put_assistant(record)
    core.remember_assistant(record)
    return record
