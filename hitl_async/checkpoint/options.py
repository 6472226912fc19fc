"""Driver options from a store URL's query string, typed by the driver's own declaration.

A driver declares the options a URL may carry as a dataclass (its fields' names, types and
defaults), e.g.

    @dataclass
    class SqliteUrlOptions:
        busy_timeout: float = 30.0
        journal_mode: str = "WAL"
        synchronous: str | None = None

and `url_options(SqliteUrlOptions, query)` returns the options the query sets, converted to
those types (`"true"`/`"false"` for bools, `""`/`"none"` for None), plus the query parameters
that are not the driver's (the driver passes them on to its client library, or refuses them).
A value that does not convert is a `ValueError` naming the option and what it takes.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, Union
from urllib.parse import parse_qsl

__all__ = ["parse_bool", "url_options"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(text: str) -> bool:
    """`true/false`, `yes/no`, `on/off`, `1/0` (any case)."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"expected a boolean (true/false), got {text!r}")


def _converter(kind: Any) -> tuple[Callable[[str], Any], bool]:
    """How to convert text to `kind`, and whether None is allowed."""
    optional = False
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        optional = len(args) < len(typing.get_args(kind))
        kind = args[0] if len(args) == 1 else str
    if kind is bool:
        return parse_bool, optional
    if kind in (int, float, str):
        return kind, optional
    return str, optional


def url_options(
    spec: type[Any], query: str | list[tuple[str, str]]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The options of the dataclass `spec` that `query` sets (typed), and the other query
    parameters, in order."""
    hints = typing.get_type_hints(spec)
    fields = {f.name for f in dataclasses.fields(spec)}
    pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else query
    found: dict[str, Any] = {}
    rest: list[tuple[str, str]] = []
    for name, value in pairs:
        if name not in fields:
            rest.append((name, value))
            continue
        convert, optional = _converter(hints[name])
        if optional and value.strip().lower() in {"", "none"}:
            found[name] = None
            continue
        try:
            found[name] = convert(value)
        except ValueError as exc:
            raise ValueError(
                f"bad value for URL option {name!r} ({_describe(hints[name])}): {exc}"
            ) from None
    return found, rest


def _describe(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind)
