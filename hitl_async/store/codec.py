"""How store items are checked and written: namespaces, keys, JSON values and timestamps.

Every driver stores a namespace as its labels joined by "." (as LangGraph does), which is
unambiguous because a label may not contain "." (nor NUL, which PostgreSQL cannot store), and
stores values as JSON text. Values are checked strictly before anything is written: a dict with
str keys whose leaves are str, int (64-bit), finite float, bool or None, nested in dicts, lists
and tuples (a tuple is stored as a list, as JSON has no tuple), no string holding a NUL (which
PostgreSQL cannot store). Anything else (datetime, UUID,
bytes, NaN, a set, an object) is a `StoreValueError` naming the path of the part, so a value never
comes back as something different from what was put. Decoding is `orjson.loads`: it never runs
code, and damaged text is a `StoreCorruptError` naming the item.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from hitl_async.store.errors import (
    InvalidNamespaceError,
    InvalidStoreRequestError,
    StoreCorruptError,
    StoreValueError,
)

__all__ = [
    "MAX_DEPTH",
    "RESERVED_ROOT",
    "check_key",
    "check_namespace",
    "check_prefix",
    "checked_prefix_text",
    "checked_text",
    "decode_value",
    "encode_checked",
    "encode_value",
    "from_us",
    "namespace_text",
    "now_us",
    "split_namespace",
]

RESERVED_ROOT = "langgraph"
"""The root label LangGraph reserves for itself: `put()` refuses namespaces under it."""

MAX_DEPTH = 254
"""How deeply containers may nest in a value (orjson's limit)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # orjson's range
_clock_lock = threading.Lock()
_last_us = 0


def now_us() -> int:
    """Microseconds since the epoch, strictly increasing within this process (so an update is
    always later than the write it replaces, even within one microsecond)."""
    global _last_us
    now = _time_ns() // 1000
    _clock_lock.acquire()  # nothing below can raise: no `with` (a third of the call's time)
    if now <= _last_us:
        now = _last_us + 1
    _last_us = now
    _clock_lock.release()
    return now


_time_ns = time.time_ns


def _fresh_clock_lock() -> None:
    global _clock_lock
    _clock_lock = threading.Lock()  # (another thread may have held it at the fork)


os.register_at_fork(after_in_child=_fresh_clock_lock)


_FLOAT_EXACT_US = 2**32 * 1_000_000  # until 2106 a double holds seconds to within 0.5 us


def from_us(us: int) -> datetime:
    """The UTC datetime of a stored microsecond timestamp, exactly (before 2106 through a
    float, which `fromtimestamp` rounds back to the same microsecond; after, by arithmetic)."""
    if 0 <= us < _FLOAT_EXACT_US:
        return _fromtimestamp(us / 1_000_000, UTC)
    return _EPOCH + timedelta(microseconds=us)


_fromtimestamp = datetime.fromtimestamp


def _label_problem(label: object) -> str | None:
    if not isinstance(label, str):
        return f"labels must be strings, got {type(label).__name__}"
    if not label:
        return "labels cannot be empty strings"
    if "." in label:
        return "labels cannot contain periods ('.')"
    if "\x00" in label:
        return "labels cannot contain NUL characters"
    return None


_VALID: dict[tuple[str, ...], str] = {}
"""Namespaces already checked, with their text (bounded: cleared when it grows too large)."""
_VALID_MAX = 65536


def _seen(namespace: tuple[Any, ...]) -> bool:
    try:
        return namespace in _VALID
    except TypeError:  # an unhashable label: not seen, and the checks below name it
        return False


def check_namespace(namespace: Any, *, put: bool = False) -> tuple[str, ...]:
    """The namespace as a tuple, or `InvalidNamespaceError` saying what is wrong with it.

    `put=True` also refuses the reserved root label, as LangGraph's `put()` does.
    """
    if type(namespace) is tuple and _seen(namespace):
        if put and namespace[0] == RESERVED_ROOT:
            raise InvalidNamespaceError(
                f'Root label for namespace cannot be "{RESERVED_ROOT}" (reserved). Got: {namespace}'
            )
        return namespace
    if isinstance(namespace, str) or not isinstance(namespace, Sequence):
        raise InvalidNamespaceError(
            f"a namespace is a tuple of strings such as ('users', 'u1'), got {namespace!r}"
        )
    ns = tuple(namespace)
    if not ns:
        raise InvalidNamespaceError("Namespace cannot be empty: give at least one label.")
    for label in ns:
        problem = _label_problem(label)
        if problem is not None:
            raise InvalidNamespaceError(f"Invalid namespace label {label!r} in {ns}: {problem}.")
    if put and ns[0] == RESERVED_ROOT:
        raise InvalidNamespaceError(
            f'Root label for namespace cannot be "{RESERVED_ROOT}" (reserved). Got: {ns}'
        )
    if len(_VALID) >= _VALID_MAX:
        _VALID.clear()
    _VALID[ns] = ".".join(ns)
    return ns


def checked_text(namespace: Any, *, put: bool = False) -> str:
    """`namespace_text(check_namespace(namespace, put=put))` in one dict lookup for a namespace
    seen before (the hot path of every get and put)."""
    try:
        text = _VALID.get(namespace) if type(namespace) is tuple else None
    except TypeError:  # an unhashable label: check_namespace names it
        text = None
    if text is None or (put and namespace[0] == RESERVED_ROOT):
        return namespace_text(check_namespace(namespace, put=put))
    return text


def checked_prefix_text(prefix: Any) -> str:
    """`namespace_text(check_prefix(prefix))`, in one dict lookup for a prefix that is a
    namespace seen before."""
    try:
        text = _VALID.get(prefix) if type(prefix) is tuple else None
    except TypeError:
        text = None
    return namespace_text(check_prefix(prefix)) if text is None else text


def namespace_text(namespace: tuple[str, ...]) -> str:
    """The stored form of a namespace: its labels joined by '.'."""
    text = _VALID.get(namespace)
    return text if text is not None else ".".join(namespace)


def check_prefix(prefix: Any, *, wildcards: bool = False, what: str = "prefix") -> tuple[str, ...]:
    """A search or listing prefix as a tuple (empty allowed); `wildcards` lets "*" stand for any
    one label (list_namespaces)."""
    if prefix is None:
        return ()
    if isinstance(prefix, str) or not isinstance(prefix, Sequence):
        raise InvalidNamespaceError(
            f"a namespace {what} is a tuple of strings such as ('users',), got {prefix!r}"
        )
    ns = tuple(prefix)
    for label in ns:
        if wildcards and label == "*":
            continue
        problem = _label_problem(label)
        if problem is not None:
            raise InvalidNamespaceError(
                f"Invalid label {label!r} in namespace {what} {ns}: {problem}."
            )
    return ns


def check_key(key: Any) -> str:
    """The key as a string (LangGraph calls `str()` on it), refusing NUL characters."""
    text = key if type(key) is str else str(key)
    if "\x00" in text:
        raise InvalidStoreRequestError(f"Invalid key {text!r}: keys cannot contain NUL characters.")
    return text


def split_namespace(text: str) -> tuple[str, ...]:
    """The namespace of a stored text (inverse of `namespace_text`); remembered, as every item
    read makes one and a store holds few namespaces."""
    labels = _SPLIT.get(text)
    if labels is None:
        if len(_SPLIT) >= _VALID_MAX:
            _SPLIT.clear()
        labels = _SPLIT[text] = tuple(text.split("."))
    return labels


_SPLIT: dict[str, tuple[str, ...]] = {}


def _where(path: list[str | int]) -> str:
    out = "value"
    for part in path:
        out += f"[{part!r}]"
    return out


def _bad(namespace: tuple[str, ...], key: str, path: list[str | int], why: str) -> StoreValueError:
    return StoreValueError(
        f"cannot store the value of {namespace} / {key!r}: {_where(path)} {why}. Store values are "
        "JSON documents (dicts of str, int, float, bool, None, lists and dicts); convert it "
        "first (e.g. a datetime to .isoformat(), a UUID or Decimal to str)."
    )


def _check_json(namespace: tuple[str, ...], key: str, value: Any) -> None:
    """Walk `value` without recursion and refuse anything that is not plain JSON."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        obj, path = stack.pop()
        if len(path) > MAX_DEPTH:
            raise _bad(namespace, key, path[:3], f"nests deeper than {MAX_DEPTH} levels")
        if isinstance(obj, str):
            if "\x00" in obj:
                why = "contains a NUL character (PostgreSQL cannot store it)"
                raise _bad(namespace, key, path, why)
            continue
        if obj is None or isinstance(obj, bool):
            continue
        if isinstance(obj, int):
            if not _INT_MIN <= obj <= _INT_MAX:
                raise _bad(namespace, key, path, "is an integer outside the 64-bit range")
            continue
        if isinstance(obj, float):
            if not math.isfinite(obj):
                raise _bad(namespace, key, path, f"is {obj!r}, which JSON cannot represent")
            continue
        if isinstance(obj, dict):
            for k, v in obj.items():
                if not isinstance(k, str):
                    raise _bad(namespace, key, [*path, k], f"has a {type(k).__name__} key")
                if "\x00" in k:
                    raise _bad(namespace, key, path, f"has a key with a NUL character: {k!r}")
                stack.append((v, [*path, k]))
            continue
        if isinstance(obj, list | tuple):
            stack.extend((v, [*path, i]) for i, v in enumerate(obj))
            continue
        raise _bad(namespace, key, path, f"is a {type(obj).__qualname__}")


def encode_value(namespace: tuple[str, ...], key: str, value: Any) -> bytes:
    """The JSON bytes of a value given to `put()`, or `StoreValueError` naming what is wrong."""
    return encode_checked(namespace, key, value)[0]


def encode_checked(
    namespace: tuple[str, ...], key: str, value: Any
) -> tuple[bytes, dict[str, Any]]:
    """The JSON bytes of a value and the value read back from them (a deep copy the caller
    owns), or `StoreValueError` naming what is wrong.

    The fast check is the round trip itself: plain JSON comes back equal. Anything else (a
    tuple, a str subclass, or something that is not JSON at all) is walked to accept it or name
    the offending part.
    """
    if not isinstance(value, dict):
        raise StoreValueError(
            f"cannot store the value of {namespace} / {key!r}: a store value is a dict, "
            f"got {type(value).__name__}; wrap it, e.g. {{'value': ...}}"
        )
    try:
        data = orjson.dumps(value, option=_STRICT, default=_refuse)
        copy = orjson.loads(data)
        if copy == value and b"\\u0000" not in data:
            return data, copy
    except (TypeError, orjson.JSONEncodeError):
        pass
    _check_json(namespace, key, value)  # raises, naming the part, unless it is acceptable
    try:
        data = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise _bad(namespace, key, [], f"cannot be encoded ({exc})") from exc
    return data, orjson.loads(data)


_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _refuse(obj: Any) -> Any:
    raise TypeError(type(obj).__name__)


def decode_value(data: bytes | str, namespace: str, key: str) -> dict[str, Any]:
    """The dict stored for an item; `StoreCorruptError` if the bytes are not a JSON object."""
    try:
        value = orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise StoreCorruptError(
            f"the stored value of ({namespace!r}) / {key!r} is damaged ({exc}); "
            "it was not written by this store. Delete or rewrite the item."
        ) from exc
    if not isinstance(value, dict):
        raise StoreCorruptError(
            f"the stored value of ({namespace!r}) / {key!r} is a JSON {type(value).__name__}, "
            "not an object; it was not written by this store. Delete or rewrite the item."
        )
    return value
