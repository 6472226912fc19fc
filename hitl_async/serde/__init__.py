"""Checkpoint serializer: msgpack with extension types, an allow-list and checksums, never pickle.

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

Registered types also include, with no registration, the langchain-core message classes
(`HumanMessage`, `AIMessage`, ..., their `*Chunk` variants, `RemoveMessage`) and `Document`,
stored under their public names (`langchain_core.messages.AIMessage`; see
`hitl_async.serde.langchain`).

Every stored value is framed as `0xC1 | format | CRC32C | msgpack` and the checksum is checked
before anything is decoded (`hitl_async.serde.checksum`): damaged bytes raise
SerializationError, never load as another value.

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

from hitl_async.serde.checksum import HEADER_SIZE, is_framed, seal, unseal
from hitl_async.serde.codecs import (
    EXT_BIGINT,
    EXT_DATE,
    EXT_DATETIME,
    EXT_DECIMAL,
    EXT_FROZENSET,
    EXT_REGISTERED,
    EXT_SET,
    EXT_TIME,
    EXT_TIMEDELTA,
    EXT_TUPLE,
    EXT_UUID,
)
from hitl_async.serde.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_DEPTH, MSGPACK_MAX_NESTING
from hitl_async.serde.serializer import (
    Serializer,
    default_serializer,
    register_type,
    register_types_from_annotation,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "EXT_BIGINT",
    "EXT_DATE",
    "EXT_DATETIME",
    "EXT_DECIMAL",
    "EXT_FROZENSET",
    "EXT_REGISTERED",
    "EXT_SET",
    "EXT_TIME",
    "EXT_TIMEDELTA",
    "EXT_TUPLE",
    "EXT_UUID",
    "HEADER_SIZE",
    "MSGPACK_MAX_NESTING",
    "Serializer",
    "default_serializer",
    "is_framed",
    "register_type",
    "register_types_from_annotation",
    "seal",
    "unseal",
]
