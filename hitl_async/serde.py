"""Checkpoint serializer: msgpack with extension types and an allow-list, never pickle.

Plain values (None, bool, int, float, str, bytes, list, dict) are packed by msgpack natively; every
other supported type is an extension type whose payload is itself msgpack. Decoding rebuilds only
the built-in types below and the classes registered with `Serializer.register` /
`register_type`: a name in the data is looked up in the registry and nothing is ever imported.

Ext codes (0-63 are reserved for this module; codes outside the table are refused on decode):

====  ===============  ===========================================================
code  type             payload
====  ===============  ===========================================================
0     int (> 64 bits)  two's-complement big-endian bytes
1     tuple            msgpack array of the items
2     set              msgpack array of the items
3     frozenset        msgpack array of the items
4     (reserved)       never written
5     datetime         [year, month, day, hour, minute, second, microsecond, fold, tz]
6     date             proleptic Gregorian ordinal
7     time             [hour, minute, second, microsecond, fold, tz]
8     timedelta        [days, seconds, microseconds]
9     uuid.UUID        the 16 raw bytes
10    decimal.Decimal  str(value) as ASCII (exact, incl. NaN, sNaN, Infinity, -0)
11    registered type  [registered name, state]: Enum -> member name (Flag -> value),
                       dataclass / pydantic -> field values by name, NamedTuple -> items
====  ===============  ===========================================================

`tz` is None, an int (fixed offset in microseconds), [offset, name] (a named
`datetime.timezone`) or a str (a `zoneinfo.ZoneInfo` key, checked against the zones this system
knows before it is loaded). Other tzinfo classes are refused at encode time.

Code -1 is msgpack's own Timestamp: never written here, and decoded by msgpack itself (to an inert
`msgpack.Timestamp`) before any hook runs, so it is the one foreign code that is not refused.

A bytearray comes back as bytes: msgpack packs both as bin without consulting `default`, and
telling them apart would mean walking every value before packing it (a third of the cost).

Decoding a registered dataclass calls its constructor (so `__post_init__` runs) unless it has
init=False fields or InitVars; then the stored fields are set on an uninitialized instance.

Limits against hostile or runaway data (`Serializer(max_bytes=..., max_depth=...)`, see the class
docstring): input longer than `max_bytes` (256 MiB) is refused before decoding and never written;
every length a document declares is capped at the document's length, so nothing is allocated for
a header that lies; values nest at most `max_depth` (512) containers deep when their extension
types nest 4 or more levels deep, and at most msgpack's 1024 levels of lists/dicts otherwise.
Deeply nested data is decoded and encoded without recursion, so no input can crash the process.

Lossy by design, and documented: dict subclasses (OrderedDict, defaultdict, ...) come back as a
plain dict, list subclasses as a plain list, non-Enum subclasses of str, int, float and bytes
(e.g. numpy.float64) as the base type, and memoryview as bytes. Every other type, including a
NamedTuple or any subclass of tuple, set, datetime, ... is an error unless registered.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import inspect
import sys
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo, available_timezones

import msgpack
import typing_extensions

from hitl_async.errors import SerializationError
from hitl_async.types import Command, Interrupt, Send

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "MSGPACK_MAX_NESTING",
    "Serializer",
    "default_serializer",
    "register_type",
    "register_types_from_annotation",
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

_EXT_NAMES = {
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

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_ONE_US = _dt.timedelta(microseconds=1)
_PACKER_BUF = 4096  # initial buffer of a pooled packer
_POOL_KEEP_BYTES = 64 * 1024  # a packer that produced more than this is not pooled (memory)
_POOL_SIZE = 8
_INITVAR = getattr(dataclasses, "_FIELD_INITVAR", object())

Pack: TypeAlias = Callable[[Any], bytes]
Unpack: TypeAlias = Callable[[bytes], Any]
ExtHook: TypeAlias = Callable[[int, bytes], Any]
Encoder: TypeAlias = Callable[[Any, Pack], Any]  # (value, pack of the next extension level)
Decoder: TypeAlias = Callable[[bytes, Unpack], Any]  # (payload, unpack of the next level)


def _qualname(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"


def _pydantic_base() -> type | None:
    """pydantic's BaseModel if pydantic is loaded; no model can exist otherwise, so never import."""
    mod = sys.modules.get("pydantic.main")
    return getattr(mod, "BaseModel", None) if mod is not None else None


def _is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


# --- registry entries ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    """How one registered class is turned into msgpack-able state and rebuilt from it."""

    name: str
    cls: type
    to_state: Callable[[Any], Any]
    from_state: Callable[[Any], Any]


def _enum_entry(cls: type[enum.Enum], name: str) -> _Entry:
    if issubclass(cls, enum.Flag):
        # Composite flags have no single member name: store the value.
        return _Entry(name, cls, lambda obj: obj._value_, cls)

    def from_state(state: Any) -> Any:
        if type(state) is not str:
            raise TypeError(f"expected a member name, got {type(state).__name__}")
        try:
            return cls[state]
        except KeyError:
            raise ValueError(f"{cls.__qualname__} has no member {state!r}") from None

    return _Entry(name, cls, lambda obj: obj._name_, from_state)


def _dataclass_entry(cls: type, name: str) -> _Entry:
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    has_initvar = any(
        getattr(f, "_field_type", None) is _INITVAR for f in cls.__dataclass_fields__.values()
    )

    def to_state(obj: Any) -> dict[str, Any]:
        return {n: getattr(obj, n) for n in names}

    if all(f.init for f in fields) and not has_initvar:

        def from_state(state: Any) -> Any:
            if type(state) is not dict:
                raise TypeError(f"expected a dict of fields, got {type(state).__name__}")
            return cls(**state)

        return _Entry(name, cls, to_state, from_state)

    # init=False fields or InitVars: the constructor cannot take the stored fields back, so set
    # them directly (object.__setattr__ also works for frozen and slots dataclasses).
    def from_state_raw(state: Any) -> Any:
        if type(state) is not dict:
            raise TypeError(f"expected a dict of fields, got {type(state).__name__}")
        unknown = state.keys() - set(names)
        if unknown:
            raise TypeError(f"unexpected field(s) {sorted(map(str, unknown))}")
        obj = object.__new__(cls)
        for f in fields:
            if f.name in state:
                value = state[f.name]
            elif f.default is not dataclasses.MISSING:
                value = f.default
            elif f.default_factory is not dataclasses.MISSING:
                value = f.default_factory()
            else:
                raise TypeError(f"missing field {f.name!r}")
            object.__setattr__(obj, f.name, value)
        return obj

    return _Entry(name, cls, to_state, from_state_raw)


def _namedtuple_entry(cls: type, name: str) -> _Entry:
    def from_state(state: Any) -> Any:
        if type(state) is not list:
            raise TypeError(f"expected a list of items, got {type(state).__name__}")
        return cls._make(state)  # type: ignore[attr-defined]

    return _Entry(name, cls, list, from_state)


def _pydantic_entry(cls: Any, name: str) -> _Entry:
    # Field values go through this serializer one by one (not model_dump(), which would flatten
    # nested models, tuples, ... to plain data), so they come back with their exact types.
    def to_state(obj: Any) -> list[Any]:
        fields = {n: getattr(obj, n) for n in cls.model_fields}
        return [fields, obj.__pydantic_extra__ or None, sorted(obj.model_fields_set)]

    # Rebuilt with model_construct, not model_validate: the values were validated when the model
    # was made and come back with their exact types, so revalidating would only cost time on every
    # superstep and could reject or alter a checkpoint written under older validators.
    # model_construct restores exactly what was saved, including model_fields_set. Private
    # attributes are not stored (as with model_dump); they are reset to their defaults.
    def from_state(state: Any) -> Any:
        if type(state) is not list or len(state) != 3:
            raise TypeError("expected [fields, extra, fields_set]")
        fields, extra, fields_set = state
        values = dict(fields)
        if extra:
            values.update(extra)
        return cls.model_construct(_fields_set=set(fields_set), **values)

    return _Entry(name, cls, to_state, from_state)


def _make_entry(cls: type, name: str) -> _Entry:
    if not isinstance(cls, type):
        raise TypeError(f"register() takes a class, got {cls!r}")
    if issubclass(cls, enum.Enum):
        return _enum_entry(cls, name)
    if dataclasses.is_dataclass(cls):
        return _dataclass_entry(cls, name)
    if _is_namedtuple(cls):
        return _namedtuple_entry(cls, name)
    base = _pydantic_base()
    if base is not None and issubclass(cls, base) and cls is not base:
        return _pydantic_entry(cls, name)
    raise TypeError(
        f"cannot register {_qualname(cls)}: only dataclasses, Enum subclasses, NamedTuples and "
        "pydantic (v2) models can be registered"
    )


def _prepare(
    by_name: dict[str, _Entry], by_type: dict[type, _Entry], cls: type, name: str | None
) -> _Entry | None:
    """Validate a registration; the new entry, or None when it is already there (a no-op)."""
    existing = by_type.get(cls)
    if existing is not None:
        if name is None or name == existing.name:
            return None
        raise ValueError(
            f"{_qualname(cls)} is already registered as {existing.name!r}; "
            f"cannot register it again as {name!r}"
        )
    if name is None:
        name = _qualname(cls)
    elif not isinstance(name, str) or not name:
        raise ValueError(f"a registered name must be a non-empty str, got {name!r}")
    other = by_name.get(name)
    if other is not None:
        raise ValueError(
            f"cannot register {_qualname(cls)} as {name!r}: that name is already taken by "
            f"{_qualname(other.cls)}; pass register_type(..., name='...') with another name"
        )
    return _make_entry(cls, name)


_DEFAULT_BY_NAME: dict[str, _Entry] = {}
_DEFAULT_BY_TYPE: dict[type, _Entry] = {}

_BUILTIN_TYPES: tuple[tuple[type, str], ...] = (
    (Interrupt, "hitl_async.Interrupt"),
    (Send, "hitl_async.Send"),
    (Command, "hitl_async.Command"),
)
for _cls, _name in _BUILTIN_TYPES:
    _entry = _make_entry(_cls, _name)
    _DEFAULT_BY_NAME[_name] = _DEFAULT_BY_TYPE[_cls] = _entry


# --- built-in codecs that do not recurse -----------------------------------------------------


def _bigint(n: int) -> msgpack.ExtType:
    return msgpack.ExtType(EXT_BIGINT, n.to_bytes((n.bit_length() + 8) // 8, "big", signed=True))


def _encode_tz(tz: _dt.tzinfo | None, obj: Any) -> Any:
    if tz is None:
        return None
    if type(tz) is _dt.timezone:
        args = tz.__getinitargs__()  # (offset,) or (offset, name)
        offset = args[0] // _ONE_US
        return offset if len(args) == 1 else [offset, args[1]]
    if type(tz) is ZoneInfo and tz.key is not None:
        return tz.key
    raise _EncodeError(
        type(obj),
        f"its tzinfo {tz!r} ({_qualname(type(tz))}) cannot be stored; only datetime.timezone "
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


def _decode_date(data: Any) -> _dt.date:
    return _dt.date.fromordinal(data)


# --- encode-time errors ----------------------------------------------------------------------


class _EncodeError(Exception):
    """Raised inside msgpack's `default`; `dumps` makes it a SerializationError with context."""

    def __init__(self, tp: type, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.tp = tp
        self.reason = reason
        self.fix = fix

    def message(self, channel: str | None) -> str:
        where = f" in channel {channel!r}" if channel is not None else ""
        return (
            f"cannot serialize a value of type {_qualname(self.tp)!r}{where}: {self.reason}. "
            f"Fix: {self.fix}."
        )


def _unsupported(obj: Any) -> _EncodeError:
    tp = type(obj)
    fix = f"register it with hitl_async.register_type({tp.__qualname__})"
    schema_fix = f"{fix}, or call hitl_async.register_types_from_annotation() on your state schema"
    if isinstance(obj, enum.Enum):
        return _EncodeError(tp, "it is an Enum that is not registered", schema_fix)
    if dataclasses.is_dataclass(obj):
        return _EncodeError(tp, "it is a dataclass that is not registered", schema_fix)
    if isinstance(obj, tuple) and hasattr(tp, "_fields"):
        return _EncodeError(tp, "it is a NamedTuple that is not registered", schema_fix)
    base = _pydantic_base()
    if base is not None and isinstance(obj, base):
        return _EncodeError(tp, "it is a pydantic model that is not registered", schema_fix)
    if tp.__module__ == "builtins":
        fix = "convert it to plain data (str, int, dict, list, ...) before storing it"
    else:
        fix = (
            f"store plain data instead, or make {tp.__qualname__} a dataclass, Enum, NamedTuple "
            f"or pydantic model and {fix}"
        )
    return _EncodeError(
        tp,
        "it is not a supported type (checkpoints hold plain data, datetime/UUID/Decimal values "
        "and registered dataclasses, Enums, NamedTuples and pydantic models)",
        fix,
    )


# --- limits ----------------------------------------------------------------------------------

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Default `Serializer(max_bytes=...)`: the longest encoding `dumps` writes and `loads` reads."""

DEFAULT_MAX_DEPTH = 512
"""Default `Serializer(max_depth=...)`: how many containers deep a measured value may nest."""

MSGPACK_MAX_NESTING = 1024
"""msgpack's own, fixed limit on lists/dicts nested in one msgpack document (its parser's stack).

Its packer refuses anything deeper except an empty list or dict one level further down, which
this serializer reads back itself (see `_unpack_peeled`), so whatever `dumps` writes loads."""

# Extension values (tuples, sets, date/time values, registered objects) nested fewer levels deep
# than this take the fast path: nested msgpack calls, no depth measurement. Deeper values are
# measured, then encoded/decoded by a loop with no recursion (`_deep_dumps`, `_deep_loads`). The
# fast path's C stack is what bounds this: msgpack's packer recurses in C for every list/dict
# level (~0.4 KiB each, up to MSGPACK_MAX_NESTING per extension level: 18 levels of 1000 lists
# crashed an 8 MiB stack) and msgpack.unpackb reserves ~40 KiB per call (~200 nested tuples
# crashed), so 4 levels use at most ~1.7 MiB.
_FAST_EXT_LEVELS = 4

_ARRAY_HEADERS = frozenset([*range(0x90, 0xA0), 0xDC, 0xDD])
_MAP_HEADERS = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


class _Limit(Exception):
    """Internal signals about nesting; `dumps`/`loads` turn them into SerializationError."""


class _MeasureDepth(_Limit):
    """Extension values nest `_FAST_EXT_LEVELS` deep: measure the value, then take the deep path."""


class _TooDeep(_Limit):
    """The value nests more than `max_depth` containers deep."""


class _TooBig(_Limit):
    """A deep value's nested extension payloads add up to more than the payload budget."""


class _UseLoop(_Limit):
    """The deep path's levels ran out: redo the work with the loop version."""


def _measure(value: Any) -> Any:
    raise _MeasureDepth


def _too_deep(value: Any) -> Any:
    raise _TooDeep


def _use_loop(value: Any) -> Any:
    raise _UseLoop


class _Ext:
    """An extension value not decoded yet (the deep path decodes payloads one at a time)."""

    __slots__ = ("code", "data")

    def __init__(self, code: int, data: bytes) -> None:
        self.code = code
        self.data = data


# Steps of the deep path's iterative post-order walk.
_VISIT, _LIST, _DICT, _EXT = range(4)
_RAW_CODES = frozenset({EXT_BIGINT, EXT_UUID, EXT_DECIMAL})  # payload is not msgpack
_PLAIN = frozenset({type(None), bool, float, str, bytes, bytearray, memoryview})
# Every extension value carries its own copy of its payload, so a chain of n nested values costs
# about n times its size to encode or decode. The deep path stops when the nested payloads add up
# to more than this many times max_bytes (default 2 GiB), both ways.
_PAYLOAD_BUDGET = 8

# The deep path recurses (at C speed) for up to this many extension levels (~4 Python frames and
# a few KiB of C stack each), then hands over to a loop. It also needs max_depth below this,
# which bounds the C recursion of msgpack's packer (~0.4 KiB per level).
_RECURSIVE_LEVELS = 100
_RECURSIVE_MAX_DEPTH = 2048
_UNPACKB_LEVELS = 16  # then msgpack.Unpacker (heap state, ~1 us slower per call): <= 640 KiB


def _collect(results: list[Any], step: int, count: int) -> Any:
    """Pop the last `count` items (list) or key/value pairs (dict) off `results`, built."""
    cut = len(results) - (count if step == _LIST else 2 * count)
    flat = results[cut:]
    del results[cut:]
    return flat if step == _LIST else dict(zip(flat[::2], flat[1::2], strict=True))


# Types the depth walk treats as leaves: msgpack scalars, and extension types whose payload is
# raw bytes (so they open no extension level). Any other extension type counts as one level.
_LEAVES = frozenset({type(None), bool, int, float, str, bytes, uuid.UUID, Decimal})
_EXT_SCALARS = frozenset({_dt.datetime, _dt.date, _dt.time, _dt.timedelta})


def _depth_exceeds(value: Any, limit: int, by_type: dict[type, _Entry]) -> bool:
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


def _unpack_heap(data: bytes, hook: ExtHook) -> Any:
    """`msgpack.unpackb` with the parser's state on the heap (unpackb puts ~40 KiB on the C
    stack per call, too much for nested extension payloads)."""
    unpacker = _unpacker(data, hook)
    try:
        value = unpacker.unpack()
    except msgpack.OutOfData:
        raise ValueError("incomplete data") from None
    except msgpack.StackError:
        return _unpack_peeled(data, hook)
    return _finish(unpacker, value, data)


def _unpack_peeled(data: bytes, hook: ExtHook) -> Any:
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


def _nesting_reason() -> str:
    return (
        f"it nests too deeply: lists and dicts more than {MSGPACK_MAX_NESTING} levels deep "
        "(msgpack's fixed limit)"
    )


def _recursion_reason() -> str:
    return (
        "it nests too deeply: extension values (tuples, sets, registered objects, ...) nested "
        f"beyond what Python's recursion limit ({sys.getrecursionlimit()}) allows"
    )


def _where(channel: str | None) -> str:
    return f" in channel {channel!r}" if channel is not None else ""


def _unknown_code(code: int) -> SerializationError:
    return SerializationError(
        f"unknown extension type code {code} in checkpoint data: it was written by a different "
        "serializer, or the data is corrupt"
    )


def _malformed(code: int, exc: Exception) -> SerializationError:
    if isinstance(exc, msgpack.StackError):
        reason = _nesting_reason()
    elif isinstance(exc, RecursionError):
        reason = _recursion_reason()
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return SerializationError(
        f"malformed {_EXT_NAMES[code]} value (ext code {code}) in checkpoint data: {reason}"
    )


def _as_list(items: Any) -> list[Any]:
    if type(items) is not list:
        raise TypeError(f"expected an array, got {type(items).__name__}")
    return items


# --- the serializer --------------------------------------------------------------------------


class Serializer:
    """Encodes checkpoint values to msgpack bytes and back; see the module docstring for types.

    Each instance has its own registry, copied from the defaults (`register_type`) when created.

    Limits against hostile or runaway data, applied the same way in both directions so that
    whatever `dumps` writes, `loads` reads back:

    - `max_bytes` (default 256 MiB): `loads` refuses longer input before decoding any of it and
      `dumps` refuses to produce it. msgpack caps every length a document declares (str, bin,
      array, map, ext) at the document's own length, so a header claiming 300 MB inside a small
      blob fails before anything is allocated.
    - `max_depth` (default 512): how many containers deep a value may nest (lists, dicts, tuples,
      sets, date/time values and registered objects are one level each). Values whose extension
      types (tuples, sets, date/time values, registered objects) nest 4 or more levels deep are
      measured exactly, then encoded and decoded without recursion. Shallower values skip the
      measurement (it would cost several times the encoding itself): their lists and dicts are
      bounded by msgpack's fixed limit of 1024 levels per extension level.

    Nothing here depends on Python's recursion limit or the thread's stack size beyond ~2 MiB.
    """

    def __init__(
        self, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
    ) -> None:
        for option, limit in (("max_bytes", max_bytes), ("max_depth", max_depth)):
            if type(limit) is not int or limit < 1:
                raise ValueError(f"{option} must be a positive int, got {limit!r}")
        self._max_bytes = max_bytes
        self._max_depth = max_depth
        self._by_name: dict[str, _Entry] = dict(_DEFAULT_BY_NAME)
        self._by_type: dict[type, _Entry] = dict(_DEFAULT_BY_TYPE)
        by_name = self._by_name
        ExtType = msgpack.ExtType

        # Codecs get the pack/unpack function of the next extension level as their 2nd argument.
        def enc_datetime(v: _dt.datetime, pack: Pack) -> msgpack.ExtType:
            return ExtType(
                EXT_DATETIME,
                pack(
                    [
                        v.year,
                        v.month,
                        v.day,
                        v.hour,
                        v.minute,
                        v.second,
                        v.microsecond,
                        v.fold,
                        _encode_tz(v.tzinfo, v),
                    ]
                ),
            )

        def dec_datetime(data: bytes, unpack: Unpack) -> _dt.datetime:
            y, mo, d, h, mi, s, us, fold, tz = _as_list(unpack(data))
            return _dt.datetime(y, mo, d, h, mi, s, us, _decode_tz(tz), fold=fold)

        def enc_time(v: _dt.time, pack: Pack) -> msgpack.ExtType:
            state = [v.hour, v.minute, v.second, v.microsecond, v.fold, _encode_tz(v.tzinfo, v)]
            return ExtType(EXT_TIME, pack(state))

        def dec_time(data: bytes, unpack: Unpack) -> _dt.time:
            h, mi, s, us, fold, tz = _as_list(unpack(data))
            return _dt.time(h, mi, s, us, _decode_tz(tz), fold=fold)

        def dec_timedelta(data: bytes, unpack: Unpack) -> _dt.timedelta:
            days, seconds, us = _as_list(unpack(data))
            return _dt.timedelta(days, seconds, us)

        def dec_registered(data: bytes, unpack: Unpack) -> Any:
            payload = unpack(data)
            if type(payload) is not list or len(payload) != 2 or type(payload[0]) is not str:
                raise TypeError("expected [name, state]")
            name, state = payload
            entry = by_name.get(name)
            if entry is None:
                raise SerializationError(
                    f"cannot deserialize registered type {name!r}: no class is registered under "
                    "that name in this serializer (decoding never imports modules). Fix: register "
                    "the class with hitl_async.register_type(...), or call "
                    "hitl_async.register_types_from_annotation() on the state schema, before "
                    "loading"
                )
            try:
                return entry.from_state(state)
            except SerializationError:
                raise
            except Exception as exc:
                raise SerializationError(
                    f"cannot rebuild registered type {name!r} ({_qualname(entry.cls)}) from "
                    f"checkpoint data: {type(exc).__name__}: {exc}"
                ) from exc

        self._encoders: dict[type, Encoder] = {
            int: lambda v, _: _bigint(v),  # only ints msgpack cannot pack natively reach here
            tuple: lambda v, pack: ExtType(EXT_TUPLE, pack(list(v))),
            set: lambda v, pack: ExtType(EXT_SET, pack(list(v))),
            frozenset: lambda v, pack: ExtType(EXT_FROZENSET, pack(list(v))),
            _dt.datetime: enc_datetime,
            _dt.date: lambda v, pack: ExtType(EXT_DATE, pack(v.toordinal())),
            _dt.time: enc_time,
            _dt.timedelta: lambda v, pack: ExtType(
                EXT_TIMEDELTA, pack([v.days, v.seconds, v.microseconds])
            ),
            uuid.UUID: lambda v, _: ExtType(EXT_UUID, v.bytes),
            Decimal: lambda v, _: ExtType(EXT_DECIMAL, str(v).encode("ascii")),
        }
        decoders: dict[int, Decoder] = {
            EXT_BIGINT: lambda d, _: int.from_bytes(d, "big", signed=True),
            EXT_TUPLE: lambda d, unpack: tuple(_as_list(unpack(d))),
            EXT_SET: lambda d, unpack: set(_as_list(unpack(d))),
            EXT_FROZENSET: lambda d, unpack: frozenset(_as_list(unpack(d))),
            EXT_DATETIME: dec_datetime,
            EXT_DATE: lambda d, unpack: _decode_date(unpack(d)),
            EXT_TIME: dec_time,
            EXT_TIMEDELTA: dec_timedelta,
            EXT_UUID: lambda d, _: uuid.UUID(bytes=d),
            EXT_DECIMAL: lambda d, _: Decimal(d.decode("ascii")),
            EXT_REGISTERED: dec_registered,
        }
        encoders = self._encoders
        for entry in self._by_type.values():
            encoders[entry.cls] = _registered_encoder(entry)

        # -- fast path: one pack/unpack function per extension level, the last one asks for a
        # depth measurement. No shared counter, so any number of threads can use them.

        def fast_pack(nxt: Pack) -> Pack:
            def default(obj: Any) -> Any:
                encoder = encoders.get(type(obj))
                if encoder is not None:
                    return encoder(obj, nxt)
                return _fallback(obj)

            pool: list[msgpack.Packer] = []

            def pack(value: Any) -> bytes:
                # Packers are pooled (3x faster than msgpack.packb, which builds one per call); a
                # packer is taken out while in use, so use from several threads is safe.
                try:
                    packer = pool.pop()
                except IndexError:
                    packer = _new_packer(default)
                out: bytes = packer.pack(value)  # on error the packer is simply dropped
                if len(out) <= _POOL_KEEP_BYTES and len(pool) < _POOL_SIZE:
                    pool.append(packer)
                return out

            return pack

        def fast_unpack(nxt: Unpack) -> Unpack:
            def ext_hook(code: int, data: bytes) -> Any:
                decoder = decoders.get(code)
                if decoder is None:
                    raise _unknown_code(code)
                try:
                    return decoder(data, nxt)
                except (SerializationError, _Limit):
                    raise
                except Exception as exc:
                    raise _malformed(code, exc) from exc

            def unpack(data: bytes) -> Any:
                try:
                    return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=ext_hook)
                except msgpack.StackError:
                    return _unpack_peeled(data, ext_hook)

            return unpack

        fast_levels = min(_FAST_EXT_LEVELS, max_depth + 1)
        pack: Pack = _measure
        unpack: Unpack = _measure
        for _ in range(fast_levels):
            pack, unpack = fast_pack(pack), fast_unpack(unpack)
        self._pack = pack
        self._unpack = unpack

        self._decoders = decoders

    @property
    def max_bytes(self) -> int:
        """The longest encoding this serializer writes or reads."""
        return self._max_bytes

    @property
    def max_depth(self) -> int:
        """How many containers deep a measured value may nest (see the class docstring)."""
        return self._max_depth

    def dumps(self, value: Any, *, channel: str | None = None) -> bytes:
        """Encode `value`; `channel` only names where the value came from in error messages."""
        try:
            out = self._pack(value)
        except Exception as exc:
            out = self._dumps_slow(value, channel, exc)
        if len(out) > self._max_bytes:
            raise SerializationError(
                f"cannot serialize value{_where(channel)}: its encoding is {len(out)} bytes, more "
                f"than max_bytes={self._max_bytes}. Fix: keep large data outside the state (a "
                "file or object store) and store a reference, or raise the limit with "
                "Serializer(max_bytes=...)"
            )
        return out

    def _dumps_slow(self, value: Any, channel: str | None, exc: Exception) -> bytes:
        """`dumps` after the fast path raised: measure and take the deep path, or explain."""
        try:
            if not isinstance(exc, _MeasureDepth):
                raise exc
            if _depth_exceeds(value, self._max_depth, self._by_type):
                raise _TooDeep
            return self._deep_dumps(value)
        except _EncodeError as err:
            raise SerializationError(err.message(channel)) from None
        except SerializationError:
            raise
        except _TooBig:
            raise SerializationError(
                f"cannot serialize value{_where(channel)}: {self._budget_reason()}. Fix: "
                "flatten it, or raise the limit with Serializer(max_bytes=...)"
            ) from None
        except _TooDeep:
            raise SerializationError(
                f"cannot serialize value{_where(channel)}: it nests too deeply: more than "
                f"max_depth={self._max_depth} levels of containers, or it contains a reference "
                "cycle. Fix: flatten the value, or raise the limit with Serializer(max_depth=...)"
            ) from None
        except Exception as err:
            if isinstance(err, RecursionError):
                reason = _recursion_reason()
            elif "recursion limit" in str(err):  # msgpack's packer: lists/dicts too deep
                reason = f"{_nesting_reason()}, or it contains a reference cycle"
            else:
                reason = f"{type(err).__name__}: {err}"
            raise SerializationError(f"cannot serialize value{_where(channel)}: {reason}") from err

    def loads(self, data: bytes) -> Any:
        """Decode bytes made by `dumps`; anything malformed raises SerializationError."""
        try:
            if len(data) <= self._max_bytes:
                return self._unpack(data)
        except Exception as exc:
            return self._loads_slow(data, exc)
        raise SerializationError(
            f"cannot deserialize checkpoint data: it is {len(data)} bytes, more than "
            f"max_bytes={self._max_bytes}, so it was not decoded. If it is legitimate, load it "
            "with Serializer(max_bytes=...)"
        )

    def _loads_slow(self, data: bytes, exc: Exception) -> Any:
        """`loads` after the fast path raised: take the deep path and measure, or explain."""
        try:
            if not isinstance(exc, _MeasureDepth):
                raise exc
            value = self._deep_loads(data)
            if _depth_exceeds(value, self._max_depth, self._by_type):
                raise _TooDeep
            return value
        except SerializationError:
            raise
        except _TooBig:
            raise SerializationError(
                f"cannot deserialize checkpoint data ({len(data)} bytes): "
                f"{self._budget_reason()}. If the data is legitimate (written with a higher "
                "limit), load it with Serializer(max_bytes=...)"
            ) from None
        except _TooDeep:
            raise SerializationError(
                f"cannot deserialize checkpoint data ({len(data)} bytes): it nests too deeply: "
                f"more than max_depth={self._max_depth} levels of containers. If the data is "
                "legitimate (written with a higher limit), load it with Serializer(max_depth=...)"
            ) from None
        except Exception as err:
            size = f"{len(data)} bytes" if isinstance(data, (bytes, bytearray)) else "data"
            if isinstance(err, msgpack.StackError):
                reason = _nesting_reason()
            elif isinstance(err, RecursionError):
                reason = _recursion_reason()
            else:
                reason = f"{type(err).__name__}: {err}"
            raise SerializationError(
                f"cannot deserialize checkpoint data ({size}): it is truncated, corrupt or not "
                f"made by this serializer ({reason})"
            ) from err

    def _budget_reason(self) -> str:
        return (
            "it nests too deeply for its size: its extension values (tuples, sets, registered "
            "objects, ...) nest 4 or more levels deep and each level holds a copy of everything "
            f"inside it, more than {_PAYLOAD_BUDGET * self._max_bytes} bytes in all "
            f"({_PAYLOAD_BUDGET} x max_bytes)"
        )

    def _deep_dumps(self, value: Any) -> bytes:
        """`dumps` for a value measured at most `max_depth` deep, at C speed: msgpack's packer
        with one packer per extension level (the measurement bounds its C stack). Past
        `_RECURSIVE_LEVELS` levels, or Python's recursion limit, the loop version takes over."""
        if self._max_depth > _RECURSIVE_MAX_DEPTH:
            return self._loop_dumps(value)
        encoders = self._encoders
        budget = [_PAYLOAD_BUDGET * self._max_bytes]
        packs: list[Pack] = []

        def level(n: int) -> Pack:
            while len(packs) <= n:
                packs.append(make(len(packs)))
            return packs[n]

        def make(n: int) -> Pack:
            if n > _RECURSIVE_LEVELS:
                return _use_loop

            def default(obj: Any) -> Any:
                encoder = encoders.get(type(obj))
                if encoder is not None:
                    return encoder(obj, level(n + 1))
                return _fallback(obj)

            packer = _new_packer(default)  # never re-entered: nested values go one level down

            def pack(payload: Any) -> bytes:
                out: bytes = packer.pack(payload)
                if n:  # an extension value's payload
                    budget[0] -= len(out)
                    if budget[0] < 0:
                        raise _TooBig
                return out

            return pack

        try:
            return level(0)(value)
        except (_UseLoop, RecursionError):
            return self._loop_dumps(value)

    def _deep_loads(self, data: bytes) -> Any:
        """`loads` past the fast path's levels, at C speed: one msgpack call per extension
        payload, with the parser's state on the heap below `_UNPACKB_LEVELS` levels. Past
        `_RECURSIVE_LEVELS` levels, or Python's recursion limit, the loop version takes over."""
        decoders = self._decoders
        max_depth = self._max_depth
        budget = [_PAYLOAD_BUDGET * self._max_bytes]
        unpacks: list[Unpack] = []

        def level(n: int) -> Unpack:
            while len(unpacks) <= n:
                unpacks.append(make(len(unpacks)))
            return unpacks[n]

        def make(n: int) -> Unpack:
            if n > max_depth:  # n extension values nested: deeper than the walk allows
                return _too_deep
            if n > _RECURSIVE_LEVELS:
                return _use_loop

            def ext_hook(code: int, payload: bytes) -> Any:
                decoder = decoders.get(code)
                if decoder is None:
                    raise _unknown_code(code)
                try:
                    return decoder(payload, level(n + 1))
                except (SerializationError, _Limit, RecursionError):
                    raise
                except Exception as exc:
                    raise _malformed(code, exc) from exc

            def unpack(payload: bytes) -> Any:
                if n:
                    budget[0] -= len(payload)
                    if budget[0] < 0:
                        raise _TooBig
                if n >= _UNPACKB_LEVELS:
                    return _unpack_heap(payload, ext_hook)
                try:
                    return msgpack.unpackb(
                        payload, raw=False, strict_map_key=False, ext_hook=ext_hook
                    )
                except msgpack.StackError:
                    return _unpack_peeled(payload, ext_hook)

            return unpack

        try:
            return level(0)(data)
        except (_UseLoop, RecursionError):
            return self._loop_loads(data)

    def _loop_dumps(self, value: Any) -> bytes:
        """`dumps` for a measured value, without recursion: a post-order walk turns every
        extension value into its ExtType, innermost first, so nesting costs no Python or C
        stack beyond msgpack's own packing of each payload (at most `max_depth` levels)."""
        encoders = self._encoders
        packb = _new_packer(None).pack
        budget = _PAYLOAD_BUDGET * self._max_bytes
        captured: list[Any] = []

        def capture(payload: Any) -> bytes:  # stands for `pack`: the payload is packed later
            captured.append(payload)
            return b""

        results: list[Any] = []
        stack: list[tuple[int, Any]] = [(_VISIT, value)]
        while stack:
            step, obj = stack.pop()
            if step == _VISIT:
                tp = type(obj)
                if tp in _PLAIN or (tp is int and _INT_MIN <= obj <= _INT_MAX):
                    results.append(obj)
                elif tp is list:
                    stack.append((_LIST, len(obj)))
                    stack.extend((_VISIT, item) for item in reversed(obj))
                elif tp is dict:
                    stack.append((_DICT, len(obj)))
                    for key, item in reversed(obj.items()):
                        stack.append((_VISIT, item))
                        stack.append((_VISIT, key))
                elif tp is msgpack.ExtType:
                    results.append(obj)
                else:
                    encoder = encoders.get(tp)
                    if encoder is None:
                        stack.append((_VISIT, _fallback(obj)))
                        continue
                    ext = encoder(obj, capture)
                    if captured:
                        stack.append((_EXT, ext.code))
                        stack.append((_VISIT, captured.pop()))
                    else:
                        results.append(ext)
            elif step in (_LIST, _DICT):
                results.append(_collect(results, step, obj))
            else:
                payload = packb(results.pop())
                budget -= len(payload)
                if budget < 0:
                    raise _TooBig
                results.append(msgpack.ExtType(obj, payload))
        out: bytes = packb(results[0])
        return out

    def _loop_loads(self, data: bytes) -> Any:
        """`loads` without recursion: extension payloads are parsed one at a time and rebuilt
        innermost first, so any nesting decodes (and is then measured against `max_depth`)."""
        decoders = self._decoders
        max_depth = self._max_depth
        budget = _PAYLOAD_BUDGET * self._max_bytes

        def hold(code: int, payload: bytes) -> _Ext:
            if code not in decoders:
                raise _unknown_code(code)
            return _Ext(code, payload)

        def parse(payload: bytes) -> Any:
            try:
                return msgpack.unpackb(payload, raw=False, strict_map_key=False, ext_hook=hold)
            except msgpack.StackError:
                return _unpack_peeled(payload, hold)

        def build(code: int, data: bytes, payload: Any) -> Any:
            try:
                return decoders[code](data, lambda _: payload)
            except SerializationError:
                raise
            except Exception as exc:
                raise _malformed(code, exc) from exc

        results: list[Any] = []
        # (step, object, extension level): an extension value's payload is one level deeper.
        stack: list[tuple[int, Any, int]] = [(_VISIT, parse(data), 0)]
        while stack:
            step, obj, level = stack.pop()
            if step == _VISIT:
                tp = type(obj)
                if tp is list:
                    stack.append((_LIST, len(obj), level))
                    stack.extend((_VISIT, item, level) for item in reversed(obj))
                elif tp is dict:
                    stack.append((_DICT, len(obj), level))
                    for key, item in reversed(obj.items()):
                        stack.append((_VISIT, item, level))
                        stack.append((_VISIT, key, level))
                elif tp is _Ext:
                    if obj.code in _RAW_CODES:
                        results.append(build(obj.code, obj.data, None))
                        continue
                    if level >= max_depth:  # each extension value is a level of the walk too
                        raise _TooDeep
                    budget -= len(obj.data)
                    if budget < 0:
                        raise _TooBig
                    try:
                        payload = parse(obj.data)
                    except SerializationError:
                        raise
                    except Exception as exc:
                        raise _malformed(obj.code, exc) from exc
                    obj.data = b""  # parsed: keep memory linear however deep the nesting
                    stack.append((_EXT, obj.code, level))
                    stack.append((_VISIT, payload, level + 1))
                else:
                    results.append(obj)
            elif step in (_LIST, _DICT):
                results.append(_collect(results, step, obj))
            else:
                results.append(build(obj, b"", results.pop()))
        return results[0]

    def register(self, cls: type, *, name: str | None = None) -> type:
        """Allow `cls` (dataclass, Enum, NamedTuple, pydantic model) in this serializer's data.

        `name` (default `module.qualname`) is what the data stores; keep it stable across
        renames. Registering the same class again is a no-op; another class under a taken name
        is a ValueError. Returns `cls`, so it works as a class decorator.
        """
        entry = _prepare(self._by_name, self._by_type, cls, name)
        if entry is not None:
            self._add(entry)
        return cls

    def register_types_from_annotation(self, tp: Any) -> None:
        """Register, on this serializer only, every registrable class found in annotation `tp`."""
        _walk_annotation(tp, self.register)

    def _add(self, entry: _Entry) -> None:
        self._by_name[entry.name] = entry
        self._by_type[entry.cls] = entry
        self._encoders[entry.cls] = _registered_encoder(entry)


def _new_packer(default: Callable[[Any], Any]) -> msgpack.Packer:
    try:
        return msgpack.Packer(
            use_bin_type=True, strict_types=True, default=default, buf_size=_PACKER_BUF
        )
    except TypeError:  # msgpack < 1.1 has no buf_size
        return msgpack.Packer(use_bin_type=True, strict_types=True, default=default)


def _registered_encoder(entry: _Entry) -> Encoder:
    name, to_state = entry.name, entry.to_state
    return lambda obj, pack: msgpack.ExtType(EXT_REGISTERED, pack([name, to_state(obj)]))


def _fallback(obj: Any) -> Any:
    """`default`'s slow path: subclasses of plain types, else a precise error."""
    if isinstance(obj, enum.Enum):  # before str/int: IntEnum and StrEnum need registering
        raise _unsupported(obj)
    if isinstance(obj, (dict, list)):
        plain = dict(obj) if isinstance(obj, dict) else list(obj)
        return plain
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, int):
        n = int.__int__(obj)
        return n if _INT_MIN <= n <= _INT_MAX else _bigint(n)
    if isinstance(obj, float):
        return float.__float__(obj)
    if isinstance(obj, bytes):
        return bytes.__bytes__(obj)
    raise _unsupported(obj)


# --- annotations -----------------------------------------------------------------------------


def _hints(cls: type) -> list[Any]:
    """The resolved annotations of a class; unresolvable string annotations are skipped."""
    try:
        return list(typing.get_type_hints(cls, include_extras=True).values())
    except Exception:
        if dataclasses.is_dataclass(cls):
            return [f.type for f in dataclasses.fields(cls)]
        annotations: list[Any] = []
        for klass in reversed(cls.__mro__):
            annotations.extend(inspect.get_annotations(klass).values())
        return annotations


def _walk_annotation(tp: Any, register: Callable[[type], object]) -> None:
    """Find every dataclass, Enum, NamedTuple and pydantic model in `tp` and `register` it."""
    seen: dict[int, Any] = {}  # id -> object, which keeps the object (and its id) alive
    stack = [tp]
    while stack:
        t = stack.pop()
        if id(t) in seen or t is None or t is Ellipsis or isinstance(t, (str, typing.ForwardRef)):
            continue
        seen[id(t)] = t
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            stack.append(typing.get_args(t)[0])
            continue
        if origin is typing.Literal:
            stack.extend(type(a) for a in typing.get_args(t) if isinstance(a, enum.Enum))
            continue
        if origin is not None:
            stack.append(origin)
            for arg in typing.get_args(t):
                stack.extend(arg if isinstance(arg, list) else (arg,))  # Callable[[A], B]
            continue
        if isinstance(t, typing.TypeVar):
            stack.extend((t.__bound__, *t.__constraints__))
            continue
        if isinstance(t, typing.NewType):
            stack.append(t.__supertype__)
            continue
        if not isinstance(t, type):
            continue
        if typing_extensions.is_typeddict(t):
            stack.extend(_hints(t))
        elif issubclass(t, enum.Enum):
            if t.__members__:
                register(t)
        elif dataclasses.is_dataclass(t) or _is_namedtuple(t):
            register(t)
            stack.extend(_hints(t))
        else:
            base = _pydantic_base()
            if base is not None and issubclass(t, base) and not t.__module__.startswith("pydantic"):
                register(t)
                stack.extend(f.annotation for f in t.model_fields.values())


# --- defaults --------------------------------------------------------------------------------

default_serializer = Serializer()
"""The serializer the engine uses unless told otherwise."""


def register_type(cls: type, *, name: str | None = None) -> type:
    """Register `cls` on `default_serializer` and for every `Serializer()` created afterwards.

    Returns `cls`, so it works as a class decorator. See `Serializer.register`.
    """
    entry = _prepare(_DEFAULT_BY_NAME, _DEFAULT_BY_TYPE, cls, name)
    own = _prepare(default_serializer._by_name, default_serializer._by_type, cls, name)
    if entry is not None:
        _DEFAULT_BY_NAME[entry.name] = _DEFAULT_BY_TYPE[cls] = entry
    if own is not None:
        default_serializer._add(own)
    return cls


def register_types_from_annotation(tp: Any) -> None:
    """Register (as `register_type` does) every dataclass, pydantic model, Enum and NamedTuple in
    annotation `tp`, e.g. a graph's state schema, so users' own state types just work.

    Looks through Annotated, Optional/Union, list/dict/tuple/set and other generics, TypedDict
    annotations, dataclass fields and pydantic fields, recursively (cycles are fine).
    """
    _walk_annotation(tp, register_type)
