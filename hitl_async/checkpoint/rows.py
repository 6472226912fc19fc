"""Reading a driver's own rows back, for every driver: checked, never trusted.

A row can be damaged in the store (a bit flip, a hand edit, a foreign program). What the engine
serializes carries its own checks (the serializer's); what a driver stores in plain fields (ids,
versions, metadata JSON, inbox and run-queue columns) is checked here, so a damaged row becomes
a library error naming the thread (`CheckpointCorruptError`, `CorruptRecordError`), never a raw
`JSONDecodeError`/`TypeError`/`AttributeError` and never a different value. A damaged inbox row
becomes an `InboxEntry` with `damaged` set, so it never hides the healthy ones; so does a run
request in a listing (`RunRequest.damaged`).

Also here: the metadata filter of `history()` as the reference driver applies it, for drivers
that filter in Python.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from hitl_async.checkpoint.base import InboxEntry, RunRequest
from hitl_async.errors import CheckpointCorruptError, CorruptRecordError

__all__ = [
    "checked_inbox_entry",
    "checked_metadata",
    "checked_request",
    "checked_versions",
    "metadata_matches",
]


def metadata_matches(metadata: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """`history(filter=...)`'s rule: every key present with a value equal by Python's `==`
    (so `1 == 1.0 == True`, and dicts compare regardless of key order)."""
    if not filter:
        return True
    return all(k in metadata and metadata[k] == v for k, v in filter.items())


def _json(data: str | bytes | None) -> Any:
    if data is None:
        raise ValueError("it is missing (NULL)")
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data).decode("utf-8")
    if not isinstance(data, str):
        raise ValueError(f"it is a {type(data).__name__}, not JSON text")
    return json.loads(data)


def checked_metadata(
    thread_id: str, checkpoint_id: str, data: str | bytes | Mapping[str, Any] | None
) -> dict[str, Any]:
    """A checkpoint's metadata from its stored JSON (or an already decoded mapping): a dict
    with str keys, else `CheckpointCorruptError` naming thread and checkpoint."""
    try:
        value = dict(data) if isinstance(data, Mapping) else _json(data)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ValueError(f"it decodes to a {type(value).__name__}, not an object")
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointCorruptError(thread_id, checkpoint_id, "metadata", str(exc)) from exc
    return value


def checked_versions(
    thread_id: str, checkpoint_id: str, data: str | bytes | Mapping[str, Any] | None
) -> dict[str, str]:
    """A checkpoint's `channel_versions` (JSON object of str -> str), else
    `CheckpointCorruptError` naming thread and checkpoint."""
    try:
        value = dict(data) if isinstance(data, Mapping) else _json(data)
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ValueError("it is not an object of channel names to version strings")
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointCorruptError(
            thread_id, checkpoint_id, "channel versions", str(exc)
        ) from exc
    return value


_STATUSES = frozenset({"queued", "running", "done", "failed", "cancelled"})
_INBOX_TEXT = ("thread_id", "interrupt_id", "checkpoint_ns", "node", "created_at", "graph")


def checked_inbox_entry(fields: Mapping[str, Any]) -> InboxEntry:
    """An `InboxEntry` from a row's columns, each checked for its type; a damaged row gives an
    entry with `damaged` naming the bad column(s) and the readable ids kept (others empty)."""
    problems: list[str] = []
    clean: dict[str, Any] = {}
    for name in _INBOX_TEXT:
        value = fields.get(name, "" if name == "graph" else None)
        if isinstance(value, bytes | bytearray):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                value = None
        if isinstance(value, str):
            clean[name] = value
        else:
            problems.append(f"{name} is {_shown(value)}, not text")
            clean[name] = ""
    for name, optional in (("value", False), ("on_timeout", True)):
        value = fields.get(name)
        if isinstance(value, bytes | bytearray | memoryview):
            clean[name] = bytes(value)
        elif value is None and optional:
            clean[name] = None
        else:
            problems.append(f"{name} is {_shown(value)}, not bytes")
            clean[name] = b"" if not optional else None
    deadline = fields.get("deadline")
    if deadline is None or (
        isinstance(deadline, int | float)
        and not isinstance(deadline, bool)
        and not math.isnan(deadline)
    ):
        clean["deadline"] = None if deadline is None else float(deadline)
    else:
        problems.append(f"deadline is {_shown(deadline)}, not a number")
        clean["deadline"] = None
    if problems:
        clean["damaged"] = "; ".join(problems)
    return InboxEntry(**clean)


def checked_request(fields: Mapping[str, Any], *, lenient: bool = False) -> RunRequest:
    """A `RunRequest` from a row's columns, each checked; `CorruptRecordError` naming the
    request and (when readable) its thread otherwise. `lenient` (listing requests): a damaged
    row gives a request with `damaged` naming the bad column(s) instead, so it never hides the
    others."""
    thread = fields.get("thread_id")
    rid = fields.get("id")
    problems: list[str] = []

    def text(name: str, optional: bool = False) -> Any:
        value = fields.get(name)
        if isinstance(value, str) or (optional and value is None):
            return value
        problems.append(f"{name} is {_shown(value)}, not text")
        return ""

    def blob(name: str, optional: bool = False) -> Any:
        value = fields.get(name)
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        if optional and value is None:
            return None
        problems.append(f"{name} is {_shown(value)}, not bytes")
        return b""

    def number(name: str, kind: type, optional: bool = False) -> Any:
        value = fields.get(name)
        if optional and value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return kind(value)
        problems.append(f"{name} is {_shown(value)}, not a number")
        return None

    request = RunRequest(
        id=text("id"),
        queue=text("queue"),
        thread_id=text("thread_id"),
        payload=blob("payload"),
        status=text("status"),
        created_at=text("created_at"),
        owner=text("owner", True),
        claim_expires=number("claim_expires", float, True),
        attempts=number("attempts", int) or 0,
        result=blob("result", True),
        error=text("error", True),
    )
    if request.status not in _STATUSES:
        problems.append(f"status is {_shown(request.status)}, not one of {sorted(_STATUSES)}")
    if problems and lenient:
        return replace(request, damaged="; ".join(problems))
    if problems:
        raise CorruptRecordError(
            thread if isinstance(thread, str) else None,
            f"run request {rid!r}",
            "; ".join(problems),
        )
    return request


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:30] + "…"
    return f"{text} ({type(value).__name__})"
