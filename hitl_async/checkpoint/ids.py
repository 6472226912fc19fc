"""Which ids a store can hold, checked up front and the same on every driver.

A thread id is a non-empty str of at most `MAX_ID_BYTES` bytes in UTF-8, with no NUL character
(PostgreSQL text cannot hold one; C strings end at it) and no lone surrogate (it has no UTF-8
encoding: SQLite, PostgreSQL and Redis all reject or mangle it). A `uuid.UUID` or an `int` is
taken as its `str()` form, as LangGraph does. Anything else is an `InvalidThreadIdError` raised
before anything is read or written, naming the id and what would be valid.
"""

from __future__ import annotations

import uuid
from typing import Any

from hitl_async.errors import InvalidThreadIdError

__all__ = ["MAX_ID_BYTES", "check_id", "validate_thread_id"]

MAX_ID_BYTES = 1024
"""The longest thread id (and other stored id) a store accepts, in UTF-8 bytes."""

_checked: dict[str, None] = {}  # ids already found valid (a bounded cache: runs reuse ids)
_CACHE = 4096


def validate_thread_id(thread_id: Any) -> str:
    """The thread id as every store keeps it (`str`), or `InvalidThreadIdError`."""
    if isinstance(thread_id, uuid.UUID) or (
        isinstance(thread_id, int) and not isinstance(thread_id, bool)
    ):
        thread_id = str(thread_id)
    return check_id("thread id", thread_id)


def check_id(kind: str, value: Any, *, empty_ok: bool = False) -> str:
    """`value` if it is a str a store can hold as an id (`kind` names it in the error):
    non-empty unless `empty_ok`, no NUL, no lone surrogate, at most `MAX_ID_BYTES`."""
    if not isinstance(value, str):
        raise InvalidThreadIdError(kind, value, f"it is a {type(value).__name__}, not a str")
    if value in _checked:  # (never the empty string: it is valid for some kinds only)
        return value
    if not value and not empty_ok:
        raise InvalidThreadIdError(kind, value, "it is empty")
    if "\x00" in value:
        raise InvalidThreadIdError(kind, value, "it contains a NUL character ('\\x00')")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        raise InvalidThreadIdError(
            kind, value, f"it contains a lone surrogate ({bad!r}), which no store can encode"
        ) from None
    if size > MAX_ID_BYTES:
        raise InvalidThreadIdError(
            kind, value, f"it is {size} bytes long in UTF-8, over the limit of {MAX_ID_BYTES}"
        )
    if value:
        if len(_checked) >= _CACHE:
            _checked.clear()
        _checked[value] = None
    return value
