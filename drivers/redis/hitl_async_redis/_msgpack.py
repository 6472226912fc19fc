"""Typed access to `msgpack` (it ships no type information): the two calls the driver uses."""

from __future__ import annotations

from typing import Any, cast

import msgpack  # type: ignore[import-untyped]

__all__ = ["packb", "unpackb"]


def packb(value: Any) -> bytes:
    """msgpack bytes of `value`."""
    return cast(bytes, msgpack.packb(value))


def unpackb(data: bytes) -> Any:
    """The value msgpack `data` holds (any msgpack error propagates)."""
    return msgpack.unpackb(data)
