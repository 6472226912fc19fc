"""JSON for the wire: graph values (interrupts, messages, dataclasses, pydantic models, dates)
turned into what LangGraph's server sends for them, and request JSON turned into engine input."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from hitl_async.types import Command, Interrupt, Send

__all__ = ["dumps", "jsonable", "to_command"]


def jsonable(value: Any) -> Any:
    """`value` as JSON types: interrupts as `{"value", "id"}`, models by `model_dump()`,
    dataclasses field by field, tuples and sets as lists, anything unknown as its `str`; NaN and
    infinities (no JSON number) as null, as LangGraph's server writes them."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Interrupt):
        return {
            "value": jsonable(value.value),
            "id": value.id,
            "response_schema": value.response_schema,
        }
    if isinstance(value, Send):
        return {"node": value.node, "args": jsonable(value.arg)}  # langgraph-api's field name
    if isinstance(value, Command):
        return {
            k: jsonable(v)
            for k, v in (
                ("graph", value.graph),
                ("update", value.update),
                ("resume", value.resume),
                ("goto", value.goto),
            )
            if v is not None and v != ()
        }
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return jsonable(dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, BaseException):
        return {"error": type(value).__name__, "message": str(value)}
    return str(value)


def dumps(value: Any) -> str:
    """Compact JSON text of `jsonable(value)`."""
    return json.dumps(jsonable(value), separators=(",", ":"), ensure_ascii=False)


def _goto(item: Any) -> Any:
    if isinstance(item, Mapping) and "node" in item:
        arg = item["input"] if "input" in item else item.get("args", item.get("arg"))
        return Send(str(item["node"]), arg)
    return item


def to_command(body: Mapping[str, Any]) -> Command[Any]:
    """A `Command` from the request's `command` object (`resume`, `update`, `goto`)."""
    goto = body.get("goto")
    if isinstance(goto, list):
        goto_value: Any = [_goto(g) for g in goto]
    elif goto is None:
        goto_value = ()
    else:
        goto_value = _goto(goto)
    update = body.get("update")
    if isinstance(update, list):
        update = [tuple(pair) if isinstance(pair, list) else pair for pair in update]
    return Command(update=update, resume=body.get("resume"), goto=goto_value)
