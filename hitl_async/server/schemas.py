"""Request bodies of the API (pydantic models: validated, and documented at `/docs`). Unknown
fields are accepted and ignored, as LangGraph's server does for newer clients' options."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hitl_async.checkpoint.ids import validate_thread_id

__all__ = [
    "AssistantCreate",
    "AssistantLatest",
    "AssistantPatch",
    "AssistantSearch",
    "AssistantVersions",
    "BulkCancel",
    "HistoryRequest",
    "RunCreate",
    "ThreadCreate",
    "ThreadPatch",
    "ThreadPrune",
    "ThreadSearch",
    "ThreadStateUpdate",
    "require_storable_json",
]


def require_storable_json(data: Any) -> Any:
    """`data` (a parsed JSON body), or ValueError if it holds NaN or Infinity, or a string (or
    key) with a NUL character. Python's JSON parser takes NaN and Infinity, which JSON has not,
    and PostgreSQL stores neither them nor NUL in its JSON (a 500) while SQLite stored NaN as null
    (another value): a 422 on every store (LangGraph's server refuses NaN too)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(f"the string {item[:40]!r} holds a NUL character (\\u0000)")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"{item} is not a JSON number; send a finite number or null")
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return data


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        return require_storable_json(data)


class AssistantSearch(_Body):
    graph_id: str | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    limit: int = Field(10, ge=0, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class AssistantCreate(_Body):
    graph_id: str
    assistant_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] | None = None
    name: str | None = None
    description: str | None = None


class AssistantPatch(_Body):
    graph_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None


class AssistantVersions(_Body):
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=0, le=1000)
    offset: int = Field(0, ge=0)


class AssistantLatest(_Body):
    version: int


class ThreadPrune(_Body):
    thread_ids: list[str] = Field(default_factory=list)
    strategy: Literal["delete", "keep_latest"] = "delete"


class BulkCancel(_Body):
    thread_id: str | None = None
    run_ids: list[str] | None = None
    status: Literal["pending", "running", "all"] | None = None


class ThreadCreate(_Body):
    thread_id: str | None = None
    metadata: dict[str, Any] | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    graph_id: str | None = None
    supersteps: list[dict[str, Any]] | None = None

    @field_validator("thread_id")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        # an id no checkpoint store can hold (NUL, over 1024 bytes, ...) is a 422 here, not a
        # thread that is created and then fails every run
        return None if value is None else validate_thread_id(value)


class ThreadPatch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadSearch(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=0, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None
    extract: dict[str, str] | None = None


class ThreadStateUpdate(_Body):
    values: Any = None
    as_node: str | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None


class CheckpointRef(_Body):
    checkpoint: dict[str, Any] | None = None
    subgraphs: bool = False


class HistoryRequest(_Body):
    limit: int = Field(10, ge=1, le=1000)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    select: list[str] | None = None


class RunCreate(_Body):
    assistant_id: str
    input: Any = None
    command: dict[str, Any] | None = None
    stream_mode: str | list[str] | None = None
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] | None = None
    if_not_exists: Literal["reject", "create"] | None = None
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    after_seconds: float | None = Field(None, ge=0)
    durability: Literal["sync", "async", "exit"] | None = None
    webhook: str | None = None
    feedback_keys: list[str] | None = None

    @field_validator("config")
    @classmethod
    def _configurable(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        conf = (value or {}).get("configurable")
        if conf is not None and not isinstance(conf, dict):
            raise ValueError(f"config.configurable must be an object, got {type(conf).__name__}")
        return value
