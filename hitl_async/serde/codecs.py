"""Extension codes and the built-in codecs: how each supported non-msgpack type is packed.

Codecs get the pack/unpack function of the next extension level as their second argument, so a
tuple inside a tuple is packed one level down (see `hitl_async.serde.serializer`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, available_timezones

import msgpack

from hitl_async.errors import SerializationError
from hitl_async.serde.registry import Entry, pydantic_base, qualname

__all__ = [
    "EXT_BIGINT",
    "EXT_DATE",
    "EXT_DATETIME",
    "EXT_DECIMAL",
    "EXT_FROZENSET",
    "EXT_NAMES",
    "EXT_REGISTERED",
    "EXT_SET",
    "EXT_TIME",
    "EXT_TIMEDELTA",
    "EXT_TUPLE",
    "EXT_UUID",
    "INT_MAX",
    "INT_MIN",
    "Decoder",
    "EncodeError",
    "Encoder",
    "ExtHook",
    "Pack",
    "Unpack",
    "as_list",
    "bigint",
    "builtin_decoders",
    "builtin_encoders",
    "is_not_plain",
    "new_packer",
    "plain_fallback",
    "registered_encoder",
    "unknown_registered",
    "unsupported",
]

EXT_BIGINT = 0
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_DATETIME = 5
EXT_DATE = 6
EXT_TIME = 7
EXT_TIMEDELTA = 8
EXT_UUID = 9
EXT_DECIMAL = 10
EXT_REGISTERED = 11

EXT_NAMES = {
    EXT_BIGINT: "int",
    EXT_TUPLE: "tuple",
    EXT_SET: "set",
    EXT_FROZENSET: "frozenset",
    EXT_DATETIME: "datetime",
    EXT_DATE: "date",
    EXT_TIME: "time",
    EXT_TIMEDELTA: "timedelta",
    EXT_UUID: "UUID",
    EXT_DECIMAL: "Decimal",
    EXT_REGISTERED: "registered type",
}

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1
_ONE_US = _dt.timedelta(microseconds=1)
_PACKER_BUF = 4096  # initial buffer of a pooled packer

Pack: TypeAlias = Callable[[Any], bytes]
Unpack: TypeAlias = Callable[[bytes], Any]
ExtHook: TypeAlias = Callable[[int, bytes], Any]
Encoder: TypeAlias = Callable[[Any, Pack], Any]  # (value, pack of the next extension level)
Decoder: TypeAlias = Callable[[bytes, Unpack], Any]  # (payload, unpack of the next level)


# --- encode-time errors ----------------------------------------------------------------------


class EncodeError(Exception):
    """Raised inside msgpack's `default`; `dumps` makes it a SerializationError with context."""

    def __init__(self, tp: type, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.tp = tp
        self.reason = reason
        self.fix = fix

    def message(self, channel: str | None) -> str:
        where = f" in channel {channel!r}" if channel is not None else ""
        return (
            f"cannot serialize a value of type {qualname(self.tp)!r}{where}: {self.reason}. "
            f"Fix: {self.fix}."
        )


def unsupported(obj: Any) -> EncodeError:
    """The error for a value no codec or registered class handles, with the one call that
    fixes it (`hitl_async.register_type` is exported from `hitl_async`)."""
    tp = type(obj)
    fix = (
        f"call hitl_async.register_type({tp.__qualname__}) once at import time, before the graph "
        "runs"
    )
    if isinstance(obj, enum.Enum):
        return EncodeError(tp, "it is an Enum that is not registered", fix)
    if isinstance(obj, type):
        return EncodeError(tp, "it is a class, not data", "store its name or an instance instead")
    if dataclasses.is_dataclass(obj):
        return EncodeError(tp, "it is a dataclass that is not registered", fix)
    if isinstance(obj, tuple) and hasattr(tp, "_fields"):
        return EncodeError(tp, "it is a NamedTuple that is not registered", fix)
    base = pydantic_base()
    if base is not None and isinstance(obj, base):
        return EncodeError(tp, "it is a pydantic model that is not registered", fix)
    if tp.__module__ == "builtins":
        fix = "convert it to plain data (str, int, dict, list, ...) before storing it"
    else:
        fix = (
            f"store plain data instead, or make {tp.__qualname__} a dataclass, Enum, NamedTuple "
            f"or pydantic model and {fix}"
        )
    return EncodeError(
        tp,
        "it is not a supported type (checkpoints hold plain data, datetime/UUID/Decimal values, "
        "langchain-core messages and registered dataclasses, Enums, NamedTuples and pydantic "
        "models)",
        fix,
    )


# --- codecs that do not recurse --------------------------------------------------------------


def bigint(n: int) -> msgpack.ExtType:
    """An int msgpack cannot pack natively (beyond 64 bits), as two's-complement bytes."""
    return msgpack.ExtType(EXT_BIGINT, n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True))


def _encode_tz(tz: _dt.tzinfo | None, obj: Any) -> Any:
    if tz is None:
        return None
    if type(tz) is _dt.timezone:
        args = tz.__getinitargs__()  # type: ignore[attr-defined]  # (offset,) or (offset, name)
        offset = args[0] // _ONE_US
        return offset if len(args) == 1 else [offset, args[1]]
    if type(tz) is ZoneInfo and tz.key is not None:
        return tz.key
    raise EncodeError(
        type(obj),
        f"its tzinfo {tz!r} ({qualname(type(tz))}) cannot be stored; only datetime.timezone "
        "and zoneinfo.ZoneInfo zones (with a key) are supported",
        "convert it first, e.g. value.astimezone(zoneinfo.ZoneInfo('Europe/Paris'))",
    )


_zone_keys: frozenset[str] | None = None


def _decode_tz(value: Any) -> _dt.tzinfo | None:
    global _zone_keys
    if value is None:
        return None
    if type(value) is int:
        return _dt.timezone(value * _ONE_US)
    if type(value) is str:
        # Allow-list the key: ZoneInfo may fall back to importing tzdata.zoneinfo.<key parts>.
        if _zone_keys is None:
            _zone_keys = frozenset(available_timezones())
        if value not in _zone_keys:
            raise ValueError(f"unknown time zone {value!r}")
        return ZoneInfo(value)
    if type(value) is list and len(value) == 2 and type(value[0]) is int:
        return _dt.timezone(value[0] * _ONE_US, value[1])
    raise TypeError(f"malformed tzinfo {value!r}")


def as_list(items: Any) -> list[Any]:
    """`items` if it is a list (an extension payload that must be an array), else TypeError."""
    if type(items) is not list:
        raise TypeError(f"expected an array, got {type(items).__name__}")
    return items


def _enc_datetime(v: _dt.datetime, pack: Pack) -> msgpack.ExtType:
    tz = _encode_tz(v.tzinfo, v)
    state = [v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, v.fold, tz]
    return msgpack.ExtType(EXT_DATETIME, pack(state))


def _dec_datetime(data: bytes, unpack: Unpack) -> _dt.datetime:
    y, mo, d, h, mi, s, us, fold, tz = as_list(unpack(data))
    return _dt.datetime(y, mo, d, h, mi, s, us, _decode_tz(tz), fold=fold)


def _enc_time(v: _dt.time, pack: Pack) -> msgpack.ExtType:
    state = [v.hour, v.minute, v.second, v.microsecond, v.fold, _encode_tz(v.tzinfo, v)]
    return msgpack.ExtType(EXT_TIME, pack(state))


def _dec_time(data: bytes, unpack: Unpack) -> _dt.time:
    h, mi, s, us, fold, tz = as_list(unpack(data))
    return _dt.time(h, mi, s, us, _decode_tz(tz), fold=fold)


def _dec_timedelta(data: bytes, unpack: Unpack) -> _dt.timedelta:
    days, seconds, us = as_list(unpack(data))
    return _dt.timedelta(days, seconds, us)


def builtin_encoders() -> dict[type, Encoder]:
    """Encoders of the built-in extension types, by exact type."""
    ExtType = msgpack.ExtType
    return {
        int: lambda v, _: bigint(v),  # only ints msgpack cannot pack natively reach here
        tuple: lambda v, pack: ExtType(EXT_TUPLE, pack(list(v))),
        set: lambda v, pack: ExtType(EXT_SET, pack(list(v))),
        frozenset: lambda v, pack: ExtType(EXT_FROZENSET, pack(list(v))),
        _dt.datetime: _enc_datetime,
        _dt.date: lambda v, pack: ExtType(EXT_DATE, pack(v.toordinal())),
        _dt.time: _enc_time,
        _dt.timedelta: lambda v, pack: ExtType(
            EXT_TIMEDELTA, pack([v.days, v.seconds, v.microseconds])
        ),
        uuid.UUID: lambda v, _: ExtType(EXT_UUID, v.bytes),
        Decimal: lambda v, _: ExtType(EXT_DECIMAL, str(v).encode("ascii")),
    }


def builtin_decoders(registered: Decoder) -> dict[int, Decoder]:
    """Decoders by extension code; `registered` rebuilds EXT_REGISTERED values (per serializer)."""
    return {
        EXT_BIGINT: lambda d, _: int.from_bytes(d, "big", signed=True),
        EXT_TUPLE: lambda d, unpack: tuple(as_list(unpack(d))),
        EXT_SET: lambda d, unpack: set(as_list(unpack(d))),
        EXT_FROZENSET: lambda d, unpack: frozenset(as_list(unpack(d))),
        EXT_DATETIME: _dec_datetime,
        EXT_DATE: lambda d, unpack: _dt.date.fromordinal(unpack(d)),
        EXT_TIME: _dec_time,
        EXT_TIMEDELTA: _dec_timedelta,
        EXT_UUID: lambda d, _: uuid.UUID(bytes=d),
        EXT_DECIMAL: lambda d, _: Decimal(d.decode("ascii")),
        EXT_REGISTERED: registered,
    }


def registered_encoder(entry: Entry) -> Encoder:
    """The encoder of a registered class: `[name, state]` in an EXT_REGISTERED value."""
    name, to_state = entry.name, entry.to_state
    return lambda obj, pack: msgpack.ExtType(EXT_REGISTERED, pack([name, to_state(obj)]))


def new_packer(default: Callable[[Any], Any] | None) -> msgpack.Packer:
    """A packer with this format's options (bin type, strict types) and `default` hook."""
    packer_class: Any = msgpack.Packer  # the stubs lack buf_size (msgpack >= 1.1)
    options = {"use_bin_type": True, "strict_types": True, "default": default}
    try:
        packer: msgpack.Packer = packer_class(**options, buf_size=_PACKER_BUF)
    except TypeError:  # msgpack < 1.1 has no buf_size
        packer = packer_class(**options)
    return packer


_NOT_PLAIN = object()


def plain_fallback(obj: Any) -> Any:
    """A subclass of a plain type as its base value (the documented lossy cases), else a
    sentinel: the caller then tries the lazily allowed types, then reports `unsupported`."""
    if isinstance(obj, enum.Enum):  # before str/int: IntEnum and StrEnum need registering
        raise unsupported(obj)
    if isinstance(obj, (dict, list)):
        return dict(obj) if isinstance(obj, dict) else list(obj)
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, int):
        n = int.__int__(obj)
        return n if INT_MIN <= n <= INT_MAX else bigint(n)
    if isinstance(obj, float):
        return float.__float__(obj)
    if isinstance(obj, bytes):
        return bytes.__bytes__(obj)
    return _NOT_PLAIN


def is_not_plain(value: Any) -> bool:
    """Whether `plain_fallback` found no plain base type."""
    return value is _NOT_PLAIN


def unknown_registered(name: str) -> SerializationError:
    """The error for a stored registered name this serializer does not know."""
    return SerializationError(
        f"cannot deserialize registered type {name!r}: no class is registered under "
        "that name in this serializer (decoding never imports modules). Fix: call "
        "hitl_async.register_type(<the class>) before loading (a graph registers the types of "
        "its state schema when compiled)"
    )
