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

__all__ = ["Serializer", "default_serializer", "register_type", "register_types_from_annotation"]

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

Encoder: TypeAlias = Callable[[Any], Any]
Decoder: TypeAlias = Callable[[bytes], Any]


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


# --- the serializer --------------------------------------------------------------------------


class Serializer:
    """Encodes checkpoint values to msgpack bytes and back; see the module docstring for types.

    Each instance has its own registry, copied from the defaults (`register_type`) when created.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, _Entry] = dict(_DEFAULT_BY_NAME)
        self._by_type: dict[type, _Entry] = dict(_DEFAULT_BY_TYPE)
        by_name = self._by_name
        pool: list[msgpack.Packer] = []
        ExtType = msgpack.ExtType

        def pack(value: Any) -> bytes:
            # Packers are pooled (3x faster than msgpack.packb, which builds one per call); a
            # packer is taken out while in use, so nested packing from `default` is safe, and so
            # is use from several threads.
            try:
                packer = pool.pop()
            except IndexError:
                packer = _new_packer(default)
            out: bytes = packer.pack(value)  # on error the packer is simply dropped
            if len(out) <= _POOL_KEEP_BYTES and len(pool) < _POOL_SIZE:
                pool.append(packer)
            return out

        def unpack(data: bytes) -> Any:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=ext_hook)

        def unpack_list(data: bytes) -> list[Any]:
            items = unpack(data)
            if type(items) is not list:
                raise TypeError(f"expected an array, got {type(items).__name__}")
            return items

        def enc_datetime(v: _dt.datetime) -> msgpack.ExtType:
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

        def dec_datetime(data: bytes) -> _dt.datetime:
            y, mo, d, h, mi, s, us, fold, tz = unpack_list(data)
            return _dt.datetime(y, mo, d, h, mi, s, us, _decode_tz(tz), fold=fold)

        def enc_time(v: _dt.time) -> msgpack.ExtType:
            state = [v.hour, v.minute, v.second, v.microsecond, v.fold, _encode_tz(v.tzinfo, v)]
            return ExtType(EXT_TIME, pack(state))

        def dec_time(data: bytes) -> _dt.time:
            h, mi, s, us, fold, tz = unpack_list(data)
            return _dt.time(h, mi, s, us, _decode_tz(tz), fold=fold)

        def dec_timedelta(data: bytes) -> _dt.timedelta:
            days, seconds, us = unpack_list(data)
            return _dt.timedelta(days, seconds, us)

        def dec_registered(data: bytes) -> Any:
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
            int: _bigint,  # only ints msgpack cannot pack natively reach `default`
            tuple: lambda v: ExtType(EXT_TUPLE, pack(list(v))),
            set: lambda v: ExtType(EXT_SET, pack(list(v))),
            frozenset: lambda v: ExtType(EXT_FROZENSET, pack(list(v))),
            _dt.datetime: enc_datetime,
            _dt.date: lambda v: ExtType(EXT_DATE, pack(v.toordinal())),
            _dt.time: enc_time,
            _dt.timedelta: lambda v: ExtType(
                EXT_TIMEDELTA, pack([v.days, v.seconds, v.microseconds])
            ),
            uuid.UUID: lambda v: ExtType(EXT_UUID, v.bytes),
            Decimal: lambda v: ExtType(EXT_DECIMAL, str(v).encode("ascii")),
        }
        decoders: dict[int, Decoder] = {
            EXT_BIGINT: lambda d: int.from_bytes(d, "big", signed=True),
            EXT_TUPLE: lambda d: tuple(unpack_list(d)),
            EXT_SET: lambda d: set(unpack_list(d)),
            EXT_FROZENSET: lambda d: frozenset(unpack_list(d)),
            EXT_DATETIME: dec_datetime,
            EXT_DATE: lambda d: _decode_date(unpack(d)),
            EXT_TIME: dec_time,
            EXT_TIMEDELTA: dec_timedelta,
            EXT_UUID: lambda d: uuid.UUID(bytes=d),
            EXT_DECIMAL: lambda d: Decimal(d.decode("ascii")),
            EXT_REGISTERED: dec_registered,
        }
        encoders = self._encoders

        def default(obj: Any) -> Any:
            encoder = encoders.get(type(obj))
            if encoder is not None:
                return encoder(obj)
            return _fallback(obj)

        def ext_hook(code: int, data: bytes) -> Any:
            decoder = decoders.get(code)
            if decoder is None:
                raise SerializationError(
                    f"unknown extension type code {code} in checkpoint data: it was written by "
                    "a different serializer, or the data is corrupt"
                )
            try:
                return decoder(data)
            except SerializationError:
                raise
            except Exception as exc:
                raise SerializationError(
                    f"malformed {_EXT_NAMES[code]} value (ext code {code}) in checkpoint data: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

        self._pack = pack
        self._unpack = unpack
        self._registered_encoder = lambda entry: _registered_encoder(entry, pack)
        for entry in self._by_type.values():
            encoders[entry.cls] = self._registered_encoder(entry)

    def dumps(self, value: Any, *, channel: str | None = None) -> bytes:
        """Encode `value`; `channel` only names where the value came from in error messages."""
        try:
            return self._pack(value)
        except _EncodeError as exc:
            raise SerializationError(exc.message(channel)) from None
        except SerializationError:
            raise
        except Exception as exc:
            where = f" in channel {channel!r}" if channel is not None else ""
            if isinstance(exc, RecursionError) or "recursion limit" in str(exc):
                reason = "it nests too deeply or contains a reference cycle"
            else:
                reason = f"{type(exc).__name__}: {exc}"
            raise SerializationError(f"cannot serialize value{where}: {reason}") from exc

    def loads(self, data: bytes) -> Any:
        """Decode bytes made by `dumps`; anything malformed raises SerializationError."""
        try:
            return self._unpack(data)
        except SerializationError:
            raise
        except Exception as exc:
            size = f"{len(data)} bytes" if isinstance(data, (bytes, bytearray)) else "data"
            raise SerializationError(
                f"cannot deserialize checkpoint data ({size}): it is truncated, corrupt or not "
                f"made by this serializer ({type(exc).__name__}: {exc})"
            ) from exc

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
        self._encoders[entry.cls] = self._registered_encoder(entry)


def _new_packer(default: Callable[[Any], Any]) -> msgpack.Packer:
    try:
        return msgpack.Packer(
            use_bin_type=True, strict_types=True, default=default, buf_size=_PACKER_BUF
        )
    except TypeError:  # msgpack < 1.1 has no buf_size
        return msgpack.Packer(use_bin_type=True, strict_types=True, default=default)


def _registered_encoder(entry: _Entry, pack: Callable[[Any], bytes]) -> Encoder:
    name, to_state = entry.name, entry.to_state
    return lambda obj: msgpack.ExtType(EXT_REGISTERED, pack([name, to_state(obj)]))


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
