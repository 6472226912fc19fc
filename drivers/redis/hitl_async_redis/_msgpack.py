"""The two `msgpack` calls the driver uses, typed."""

from __future__ import annotations

from typing import Any

import msgpack

__all__ = ["packb", "unpackb"]


def packb(value: Any) -> bytes:
    """msgpack bytes of `value`."""
    packed: bytes = msgpack.packb(value)
    return packed


def unpackb(data: bytes) -> Any:
    """The value msgpack `data` holds (any msgpack error propagates)."""
    return msgpack.unpackb(data)
