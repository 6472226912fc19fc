"""Limits against hostile or runaway data, and the msgpack helpers that enforce them.

See `Serializer`'s docstring for what the limits are; this module holds the constants, the
internal signals the fast path raises to hand a value over to the deep paths, the depth
measurement, and the msgpack readers that never put more than a bounded amount on the C stack.
"""

from __future__ import annotations

import datetime as _dt
import sys
import uuid
from decimal import Decimal
from typing import Any

import msgpack

from hitl_async.errors import SerializationError
from hitl_async.serde.codecs import EXT_BIGINT, EXT_DECIMAL, EXT_NAMES, EXT_UUID, ExtHook
from hitl_async.serde.registry import Entry

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DICT",
    "EXT",
    "FAST_EXT_LEVELS",
    "LIST",
    "MSGPACK_MAX_NESTING",
    "PAYLOAD_BUDGET",
    "PLAIN",
    "RAW_CODES",
    "RECURSIVE_LEVELS",
    "RECURSIVE_MAX_DEPTH",
    "UNPACKB_LEVELS",
    "VISIT",
    "Ext",
    "Limit",
    "MeasureDepth",
    "TooBig",
    "TooDeep",
    "UseLoop",
    "collect",
    "depth_exceeds",
    "malformed",
    "measure",
    "nesting_reason",
    "recursion_reason",
    "too_deep",
    "unknown_code",
    "unpack_heap",
    "unpack_peeled",
    "use_loop",
    "where",
]

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Default `Serializer(max_bytes=...)`: the longest encoding `dumps` writes and `loads` reads."""

DEFAULT_MAX_DEPTH = 512
"""Default `Serializer(max_depth=...)`: how many containers deep a measured value may nest."""

MSGPACK_MAX_NESTING = 1024
"""msgpack's own, fixed limit on lists/dicts nested in one msgpack document (its parser's stack).

Its packer refuses anything deeper except an empty list or dict one level further down, which
this serializer reads back itself (see `unpack_peeled`), so whatever `dumps` writes loads."""

# Extension values (tuples, sets, date/time values, registered objects) nested fewer levels deep
# than this take the fast path: nested msgpack calls, no depth measurement. Deeper values are
# measured, then encoded/decoded by a loop with no recursion (`_deep_dumps`, `_deep_loads`). The
# fast path's C stack is what bounds this: msgpack's packer recurses in C for every list/dict
# level (~0.4 KiB each, up to MSGPACK_MAX_NESTING per extension level: 18 levels of 1000 lists
# crashed an 8 MiB stack) and msgpack.unpackb reserves ~40 KiB per call (~200 nested tuples
# crashed), so 4 levels use at most ~1.7 MiB.
FAST_EXT_LEVELS = 4

_ARRAY_HEADERS = frozenset([*range(0x90, 0xA0), 0xDC, 0xDD])
_MAP_HEADERS = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


class Limit(Exception):
    """Internal signals about nesting; `dumps`/`loads` turn them into SerializationError."""


class MeasureDepth(Limit):
    """Extension values nest `FAST_EXT_LEVELS` deep: measure the value, then take the deep path."""


class TooDeep(Limit):
    """The value nests more than `max_depth` containers deep."""


class TooBig(Limit):
    """A deep value's nested extension payloads add up to more than the payload budget."""


class UseLoop(Limit):
    """The deep path's levels ran out: redo the work with the loop version."""


def measure(value: Any) -> Any:
    raise MeasureDepth


def too_deep(value: Any) -> Any:
    raise TooDeep


def use_loop(value: Any) -> Any:
    raise UseLoop


class Ext:
    """An extension value not decoded yet (the deep path decodes payloads one at a time)."""

    __slots__ = ("code", "data")

    def __init__(self, code: int, data: bytes) -> None:
        self.code = code
        self.data = data


# Steps of the deep path's iterative post-order walk.
VISIT, LIST, DICT, EXT = range(4)
RAW_CODES = frozenset({EXT_BIGINT, EXT_UUID, EXT_DECIMAL})  # payload is not msgpack
PLAIN = frozenset({type(None), bool, float, str, bytes, bytearray, memoryview})
# Every extension value carries its own copy of its payload, so a chain of n nested values costs
# about n times its size to encode or decode. The deep path stops when the nested payloads add up
# to more than this many times max_bytes (default 2 GiB), both ways.
PAYLOAD_BUDGET = 8

# The deep path recurses (at C speed) for up to this many extension levels (~4 Python frames and
# a few KiB of C stack each), then hands over to a loop. It also needs max_depth below this,
# which bounds the C recursion of msgpack's packer (~0.4 KiB per level).
RECURSIVE_LEVELS = 100
RECURSIVE_MAX_DEPTH = 2048
UNPACKB_LEVELS = 16  # then msgpack.Unpacker (heap state, ~1 us slower per call): <= 640 KiB


def collect(results: list[Any], step: int, count: int) -> Any:
    """Pop the last `count` items (list) or key/value pairs (dict) off `results`, built."""
    cut = len(results) - (count if step == LIST else 2 * count)
    flat = results[cut:]
    del results[cut:]
    return flat if step == LIST else dict(zip(flat[::2], flat[1::2], strict=True))


# Types the depth walk treats as leaves: msgpack scalars, and extension types whose payload is
# raw bytes (so they open no extension level). Any other extension type counts as one level.
_LEAVES = frozenset({type(None), bool, int, float, str, bytes, uuid.UUID, Decimal})
_EXT_SCALARS = frozenset({_dt.datetime, _dt.date, _dt.time, _dt.timedelta})


def depth_exceeds(value: Any, limit: int, by_type: dict[type, Entry]) -> bool:
    """Whether `value` nests more than `limit` containers deep (iterative; a cycle is too deep).

    Lists, dicts, tuples, sets, frozensets, date/time values and registered objects are one
    level each; a registered object's stored fields are one level below it.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        obj, depth = pop()
        tp = type(obj)
        if tp in _LEAVES:
            continue
        if depth > limit:
            return True
        if tp is list or tp is tuple or tp is set or tp is frozenset:
            items: Any = obj
        elif tp is dict:
            for key in obj:
                push((key, depth + 1))
            items = obj.values()
        elif tp in _EXT_SCALARS:
            continue
        else:
            entry = by_type.get(tp)
            if entry is not None:
                state = entry.to_state(obj)
                if type(state) is dict:
                    items = state.values()
                elif type(state) is list:
                    items = state
                else:
                    continue  # an Enum's name or a Flag's value
            elif isinstance(obj, dict):
                items = [*obj.keys(), *obj.values()]
            elif isinstance(obj, (list, tuple, set, frozenset)):
                items = obj
            else:
                continue  # a leaf (str/int subclass, ...) or a type dumps will refuse anyway
        for item in items:
            if type(item) not in _LEAVES:
                push((item, depth + 1))
    return False


def _unpacker(data: bytes, hook: ExtHook) -> msgpack.Unpacker:
    # max_buffer_size caps every declared length (str, bin, array, map, ext) at len(data), as
    # msgpack.unpackb does by itself.
    unpacker = msgpack.Unpacker(
        raw=False, strict_map_key=False, ext_hook=hook, max_buffer_size=max(len(data), 1)
    )
    unpacker.feed(data)
    return unpacker


def _finish(unpacker: msgpack.Unpacker, value: Any, data: bytes) -> Any:
    extra = len(data) - unpacker.tell()
    if extra:
        raise ValueError(f"{extra} bytes of extra data after the value")
    return value


def unpack_heap(data: bytes, hook: ExtHook) -> Any:
    """`msgpack.unpackb` with the parser's state on the heap (unpackb puts ~40 KiB on the C
    stack per call, too much for nested extension payloads)."""
    unpacker = _unpacker(data, hook)
    try:
        value = unpacker.unpack()
    except msgpack.OutOfData:
        raise ValueError("incomplete data") from None
    except msgpack.StackError:
        return unpack_peeled(data, hook)
    return _finish(unpacker, value, data)


def unpack_peeled(data: bytes, hook: ExtHook) -> Any:
    """Decode a document one level deeper than msgpack's parser holds: msgpack's packer writes an
    empty list or dict at depth MSGPACK_MAX_NESTING + 1. The outer header is read here and each
    item parsed on its own; anything deeper still raises StackError."""
    first = data[0] if len(data) else -1
    unpacker = _unpacker(data, hook)
    try:
        if first in _ARRAY_HEADERS:
            value: Any = [unpacker.unpack() for _ in range(unpacker.read_array_header())]
        elif first in _MAP_HEADERS:
            value = {}
            for _ in range(unpacker.read_map_header()):
                key = unpacker.unpack()
                value[key] = unpacker.unpack()
        else:
            raise msgpack.StackError
    except msgpack.OutOfData:
        raise ValueError("incomplete data") from None
    return _finish(unpacker, value, data)


def nesting_reason() -> str:
    return (
        f"it nests too deeply: lists and dicts more than {MSGPACK_MAX_NESTING} levels deep "
        "(msgpack's fixed limit)"
    )


def recursion_reason() -> str:
    return (
        "it nests too deeply: extension values (tuples, sets, registered objects, ...) nested "
        f"beyond what Python's recursion limit ({sys.getrecursionlimit()}) allows"
    )


def where(channel: str | None) -> str:
    return f" in channel {channel!r}" if channel is not None else ""


def unknown_code(code: int) -> SerializationError:
    return SerializationError(
        f"unknown extension type code {code} in checkpoint data: it was written by a different "
        "serializer, or the data is corrupt"
    )


def malformed(code: int, exc: Exception) -> SerializationError:
    if isinstance(exc, msgpack.StackError):
        reason = nesting_reason()
    elif isinstance(exc, RecursionError):
        reason = recursion_reason()
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return SerializationError(
        f"malformed {EXT_NAMES[code]} value (ext code {code}) in checkpoint data: {reason}"
    )
