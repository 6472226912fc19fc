"""Search filters: checked once, then evaluated in-process or translated to SQL by a driver.

A filter maps top-level field names of the value to a JSON value (exact equality) or to a dict
of operators `$eq`, `$ne`, `$gt`, `$gte`, `$lt`, `$lte`. The same rules hold on every driver:

- equality is JSON equality: 1 == 1.0, but true != 1; lists in order; dicts regardless of key
  order; a missing field equals nothing, not even None (null).
- `$ne` is exactly "not `$eq`", so it matches items that lack the field.
- `$gt/$gte/$lt/$lte` compare numbers with numbers and strings with strings (by code point);
  a field of another type, or a missing one, does not match. Their operand must be a number or
  a string; NaN matches nothing.
- anything else (an unknown operator, `$`-keys mixed with plain keys, a non-string field name,
  a value that is not JSON) is an `InvalidFilterError`, raised before the search runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hitl_async.store.errors import InvalidFilterError

__all__ = [
    "OPERATORS",
    "Condition",
    "compile_filter",
    "compiled",
    "json_equal",
    "matches",
    "predicate",
]

OPERATORS = {"$eq": "eq", "$ne": "ne", "$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on a top-level field: `op` is eq, ne, gt, gte, lt or lte."""

    field: str
    op: str
    operand: Any

    @property
    def scalar(self) -> bool:
        """Whether the operand is a JSON scalar (drivers push these down to SQL)."""
        return self.operand is None or isinstance(self.operand, str | int | float | bool)

    @property
    def nan(self) -> bool:
        """Whether the operand is NaN (equal to nothing)."""
        return isinstance(self.operand, float) and math.isnan(self.operand)


def _check_operand(field: str, op: str, operand: Any) -> None:
    stack = [operand]
    while stack:
        obj = stack.pop()
        if obj is None or isinstance(obj, str | bool | int | float):
            continue
        if isinstance(obj, list | tuple):
            stack.extend(obj)
        elif isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
            stack.extend(obj.values())
        else:
            raise InvalidFilterError(
                f"filter on {field!r}: ${op} operand {operand!r} is not a JSON value "
                "(str, number, bool, None, list or dict)"
            )
    if op in ("gt", "gte", "lt", "lte") and (
        isinstance(operand, bool) or not isinstance(operand, str | int | float)
    ):
        raise InvalidFilterError(
            f"filter on {field!r}: ${op} compares with a number or a string, got {operand!r}"
        )


def compile_filter(filter: Any) -> tuple[Condition, ...]:
    """The conditions of a search filter, or `InvalidFilterError` naming what is wrong."""
    if not filter:
        return ()
    if not isinstance(filter, Mapping):
        raise InvalidFilterError(
            f"a search filter is a dict such as {{'status': 'active'}}, got {filter!r}"
        )
    out: list[Condition] = []
    for field, spec in filter.items():
        if not isinstance(field, str):
            raise InvalidFilterError(f"filter field names are strings, got {field!r}")
        if isinstance(spec, Mapping) and any(isinstance(k, str) and k[:1] == "$" for k in spec):
            for name, operand in spec.items():
                op = OPERATORS.get(name) if isinstance(name, str) else None
                if op is None:
                    raise InvalidFilterError(
                        f"filter on {field!r}: unsupported operator {name!r}; use one of "
                        f"{', '.join(OPERATORS)} (or a plain value for equality)"
                    )
                _check_operand(field, op, operand)
                out.append(Condition(field, op, operand))
        else:
            _check_operand(field, "eq", spec)
            out.append(Condition(field, "eq", spec))
    return tuple(out)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of two JSON values: numbers by value (1 == 1.0), bool only with bool."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return False


def _compare(value: Any, op: str, operand: Any) -> bool:
    if isinstance(value, bool) or isinstance(operand, bool):
        return False
    if isinstance(value, int | float) and isinstance(operand, int | float):
        pass
    elif not (isinstance(value, str) and isinstance(operand, str)):
        return False
    if op == "gt":
        return bool(value > operand)
    if op == "gte":
        return bool(value >= operand)
    if op == "lt":
        return bool(value < operand)
    return bool(value <= operand)


def matches(value: Mapping[str, Any], conditions: tuple[Condition, ...]) -> bool:
    """Whether a stored value passes every condition."""
    for cond in conditions:
        field = value.get(cond.field, _MISSING)
        if cond.op == "eq":
            ok = field is not _MISSING and json_equal(field, cond.operand)
        elif cond.op == "ne":
            ok = field is _MISSING or not json_equal(field, cond.operand)
        else:
            ok = field is not _MISSING and _compare(field, cond.op, cond.operand)
        if not ok:
            return False
    return True


def _always(value: Mapping[str, Any]) -> bool:
    return True


def _scalar_eq(field: str, operand: Any) -> Callable[[Mapping[str, Any]], bool]:
    """A fast test for `field == operand` when the operand is a str, bool or None."""
    kind = type(operand)

    def test(value: Mapping[str, Any]) -> bool:
        got = value.get(field, _MISSING)
        return type(got) is kind and got == operand

    return test


def predicate(conditions: tuple[Condition, ...]) -> Callable[[Mapping[str, Any]], bool]:
    """A function answering `matches(value, conditions)`, specialized for common conditions
    (equality with a string, bool or None) and general for the rest."""
    if not conditions:
        return _always
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    rest: list[Condition] = []
    for cond in conditions:
        if cond.op == "eq" and (cond.operand is None or type(cond.operand) in (str, bool)):
            tests.append(_scalar_eq(cond.field, cond.operand))
        else:
            rest.append(cond)
    if rest:
        remaining = tuple(rest)
        tests.append(lambda value: matches(value, remaining))
    if len(tests) == 1:
        return tests[0]
    return lambda value: all(test(value) for test in tests)


_Test = Callable[[Mapping[str, Any]], bool]
_COMPILED: dict[tuple[Any, ...], tuple[tuple[Condition, ...], _Test]] = {}
_COMPILED_MAX = 4096
_SCALARS = (str, int, float, bool, type(None))


def compiled(filter: Any) -> tuple[tuple[Condition, ...], _Test]:
    """`compile_filter(filter)` and its `predicate`, remembered for filters of plain scalar
    equalities (the common `{"kind": "fact"}`), so a repeated search skips both steps. The key
    holds each operand's type: 1, 1.0 and True are equal in Python but not in a filter."""
    if not filter:
        return (), _always
    key: tuple[Any, ...] | None = None
    if type(filter) is dict and len(filter) <= 8:
        parts: list[Any] = []
        for field, spec in filter.items():
            kind = type(spec)
            if type(field) is not str or kind not in _SCALARS:
                break
            parts += (field, kind, spec)
        else:
            key = tuple(parts)
            hit = _COMPILED.get(key)
            if hit is not None:
                return hit
    conditions = compile_filter(filter)
    result = (conditions, predicate(conditions))
    if key is not None:
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[key] = result
    return result
