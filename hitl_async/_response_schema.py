"""`interrupt(value, response_schema=...)`: the schema an interrupt's answer should follow,
surfaced as JSON Schema on the `Interrupt` (what a UI renders a form from) and, for a Python
type, used to turn the answer into that type when the node reads it, as LangGraph does."""

from __future__ import annotations

from typing import Any

__all__ = ["coerce_answer", "json_schema_of"]


def _adapter(schema: type) -> Any:
    try:
        from pydantic import TypeAdapter
    except ImportError:
        raise TypeError(
            f"interrupt(response_schema={schema.__name__}) needs pydantic to read a Python type; "
            "install pydantic, or pass the JSON Schema as a dict"
        ) from None
    return TypeAdapter(schema)


def json_schema_of(schema: Any) -> dict[str, Any] | None:
    """The JSON Schema an `Interrupt` carries: a dict as given, a type's as pydantic makes it."""
    if schema is None or isinstance(schema, dict):
        return schema
    if isinstance(schema, type):
        found: dict[str, Any] = _adapter(schema).json_schema()
        return found
    raise TypeError(
        f"interrupt(response_schema=...) takes a type or a JSON Schema dict, got {schema!r}"
    )


def coerce_answer(answer: Any, schema: Any) -> Any:
    """The answer as the node reads it: validated into `schema` when that is a Python type
    (a pydantic model, TypedDict, dataclass...), else as given."""
    if not isinstance(schema, type):
        return answer
    try:
        if isinstance(answer, schema):
            return answer
    except TypeError:  # a TypedDict or generic alias: no instance check
        pass
    return _adapter(schema).validate_python(answer)
