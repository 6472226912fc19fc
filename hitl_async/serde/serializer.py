"""`Serializer`: msgpack with extension types, an allow-list and a checksum on every value."""

from __future__ import annotations

import typing
from typing import Any

import msgpack

from hitl_async.errors import SerializationError
from hitl_async.serde.checksum import HEADER_SIZE, MARKER, seal, unseal
from hitl_async.serde.codecs import (
    Decoder,
    EncodeError,
    Encoder,
    Pack,
    Unpack,
    builtin_decoders,
    builtin_encoders,
    is_not_plain,
    new_packer,
    plain_fallback,
    registered_encoder,
    unknown_registered,
    unsupported,
)
from hitl_async.serde.deep import DeepCodec, deep_dumps, deep_loads, loop_dumps, loop_loads
from hitl_async.serde.langchain import (
    LANGCHAIN_NAMES,
    langchain_entry_for_name,
    langchain_entry_for_type,
)
from hitl_async.serde.limits import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    FAST_EXT_LEVELS,
    PAYLOAD_BUDGET,
    Limit,
    MeasureDepth,
    TooBig,
    TooDeep,
    depth_exceeds,
    malformed,
    measure,
    nesting_reason,
    recursion_reason,
    unknown_code,
    unpack_peeled,
    where,
)
from hitl_async.serde.registry import (
    DEFAULT_BY_NAME,
    DEFAULT_BY_TYPE,
    Entry,
    prepare_entry,
    qualname,
    walk_annotation,
)

__all__ = [
    "Serializer",
    "default_serializer",
    "register_type",
    "register_types_from_annotation",
    "register_types_from_signature",
]

_POOL_KEEP_BYTES = 64 * 1024  # a packer that produced more than this is not pooled (memory)
_POOL_SIZE = 8
_MARKER_BYTE = bytes([MARKER])
_RETRIES = range(len(LANGCHAIN_NAMES) + 1)  # each retry allows one more class


class _Retry(Exception):
    """A langchain-core class was just allowed: encode the value again (see `_fallback`)."""


class Serializer:
    """Encodes checkpoint values to checksummed msgpack bytes and back (see `hitl_async.serde`).

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

    Every value is framed with a CRC32C (`hitl_async.serde.checksum`), checked before decoding.
    `allow_unchecked=True` also reads values without a frame (written before checksums existed);
    it is meant only while migrating such a store.

    Nothing here depends on Python's recursion limit or the thread's stack size beyond ~2 MiB.
    """

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
        allow_unchecked: bool = False,
    ) -> None:
        for option, limit in (("max_bytes", max_bytes), ("max_depth", max_depth)):
            if type(limit) is not int or limit < 1:
                raise ValueError(f"{option} must be a positive int, got {limit!r}")
        self._max_bytes = max_bytes
        self._max_depth = max_depth
        self.allow_unchecked = allow_unchecked
        self._by_name: dict[str, Entry] = dict(DEFAULT_BY_NAME)
        self._by_type: dict[type, Entry] = dict(DEFAULT_BY_TYPE)
        self._encoders: dict[type, Encoder] = builtin_encoders()
        self._decoders: dict[int, Decoder] = builtin_decoders(self._dec_registered)
        for entry in self._by_type.values():
            self._encoders[entry.cls] = registered_encoder(entry)
        fast_levels = min(FAST_EXT_LEVELS, max_depth + 1)
        pack: Pack = measure
        unpack: Unpack = measure
        for _ in range(fast_levels):
            pack = _fast_pack(self._encoders, self._fallback, pack)
            unpack = _fast_unpack(self._decoders, unpack)
        self._pack = pack
        self._unpack = unpack
        self._deep = DeepCodec(self._encoders, self._decoders, self._fallback, max_bytes, max_depth)

    @property
    def max_bytes(self) -> int:
        """The longest encoding (checksum frame excluded) this serializer writes or reads."""
        return self._max_bytes

    @property
    def max_depth(self) -> int:
        """How many containers deep a measured value may nest (see the class docstring)."""
        return self._max_depth

    # -- the allow-list ------------------------------------------------------------------------

    def _fallback(self, obj: Any) -> Any:
        """msgpack's `default` after the exact-type lookup missed: subclasses of plain types,
        then allow-listed langchain-core classes, else a precise error."""
        plain = plain_fallback(obj)
        if not is_not_plain(plain):
            return plain
        entry = langchain_entry_for_type(type(obj))
        if entry is None:
            raise unsupported(obj)
        self._add(entry)
        raise _Retry  # the class is known now: encode the value again from the top

    def _dec_registered(self, data: bytes, unpack: Unpack) -> Any:
        payload = unpack(data)
        if type(payload) is not list or len(payload) != 2 or type(payload[0]) is not str:
            raise TypeError("expected [name, state]")
        name, state = payload
        entry = self._by_name.get(name)
        if entry is None:
            entry = langchain_entry_for_name(name)
            if entry is None:
                raise unknown_registered(name)
            self._add(entry)
        try:
            return entry.from_state(state)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"cannot rebuild registered type {name!r} ({qualname(entry.cls)}) from "
                f"checkpoint data: {type(exc).__name__}: {exc}"
            ) from exc

    # -- encode --------------------------------------------------------------------------------

    def dumps(self, value: Any, *, channel: str | None = None) -> bytes:
        """Encode `value`; `channel` only names where the value came from in error messages."""
        try:
            out = self._pack(value)
        except Exception as exc:
            out = self._dumps_slow(value, channel, exc)
        if len(out) > self._max_bytes:
            raise SerializationError(
                f"cannot serialize value{where(channel)}: its encoding is {len(out)} bytes, more "
                f"than max_bytes={self._max_bytes}. Fix: keep large data outside the state (a "
                "file or object store) and store a reference, or raise the limit with "
                "Serializer(max_bytes=...)"
            )
        return seal(out)

    def _dumps_slow(self, value: Any, channel: str | None, exc: Exception) -> bytes:
        """`dumps` after the fast path raised: retry once a class was allowed lazily, measure and
        take the deep path, or explain."""
        for _ in _RETRIES:
            if not isinstance(exc, _Retry):
                break
            try:
                return self._pack(value)
            except Exception as again:
                exc = again
        try:
            if not isinstance(exc, MeasureDepth):
                raise exc
            if depth_exceeds(value, self._max_depth, self._by_type):
                raise TooDeep
            for _ in _RETRIES:
                try:
                    return self._deep_dumps(value)
                except _Retry:
                    continue
            raise SerializationError(f"cannot serialize value{where(channel)}: too many types")
        except EncodeError as err:
            raise SerializationError(err.message(channel)) from None
        except SerializationError:
            raise
        except TooBig:
            raise SerializationError(
                f"cannot serialize value{where(channel)}: {self._budget_reason()}. Fix: "
                "flatten it, or raise the limit with Serializer(max_bytes=...)"
            ) from None
        except TooDeep:
            raise SerializationError(
                f"cannot serialize value{where(channel)}: it nests too deeply: more than "
                f"max_depth={self._max_depth} levels of containers, or it contains a reference "
                "cycle. Fix: flatten the value, or raise the limit with Serializer(max_depth=...)"
            ) from None
        except Exception as err:
            if isinstance(err, RecursionError):
                reason = recursion_reason()
            elif "recursion limit" in str(err):  # msgpack's packer: lists/dicts too deep
                reason = f"{nesting_reason()}, or it contains a reference cycle"
            else:
                reason = f"{type(err).__name__}: {err}"
            raise SerializationError(f"cannot serialize value{where(channel)}: {reason}") from err

    # -- decode --------------------------------------------------------------------------------

    def loads(self, data: bytes) -> Any:
        """Decode bytes made by `dumps` after checking their checksum; anything damaged or
        malformed raises SerializationError (never another value)."""
        if data[:1] == _MARKER_BYTE and len(data) <= self._max_bytes + HEADER_SIZE:
            payload = unseal(data)
        else:
            payload = self._unframed(data)
        try:
            return self._unpack(payload)
        except Exception as exc:
            return self._loads_slow(payload, exc)

    def _unframed(self, data: bytes) -> bytes:
        """`loads` of data that is too long or has no frame: refused, or (allow_unchecked) the
        bare msgpack of hitl-async 0.1."""
        if len(data) > self._max_bytes + HEADER_SIZE:
            raise SerializationError(
                f"cannot deserialize checkpoint data: it is {len(data)} bytes, more than "
                f"max_bytes={self._max_bytes}, so it was not decoded. If it is legitimate, load "
                "it with Serializer(max_bytes=...)"
            )
        if not self.allow_unchecked:
            raise SerializationError(
                f"checkpoint data ({len(data)} bytes) has no checksum frame: it is damaged, was "
                "not written by this serializer, or was written by hitl-async 0.1 before "
                "checksums (read such a store with Serializer(allow_unchecked=True))"
            )
        return data

    def _loads_slow(self, data: bytes, exc: Exception) -> Any:
        """`loads` after the fast path raised: take the deep path and measure, or explain."""
        try:
            if not isinstance(exc, MeasureDepth):
                raise exc
            value = self._deep_loads(data)
            if depth_exceeds(value, self._max_depth, self._by_type):
                raise TooDeep
            return value
        except SerializationError:
            raise
        except TooBig:
            raise SerializationError(
                f"cannot deserialize checkpoint data ({len(data)} bytes): "
                f"{self._budget_reason()}. If the data is legitimate (written with a higher "
                "limit), load it with Serializer(max_bytes=...)"
            ) from None
        except TooDeep:
            raise SerializationError(
                f"cannot deserialize checkpoint data ({len(data)} bytes): it nests too deeply: "
                f"more than max_depth={self._max_depth} levels of containers. If the data is "
                "legitimate (written with a higher limit), load it with Serializer(max_depth=...)"
            ) from None
        except Exception as err:
            size = f"{len(data)} bytes" if isinstance(data, (bytes, bytearray)) else "data"
            if isinstance(err, msgpack.StackError):
                reason = nesting_reason()
            elif isinstance(err, RecursionError):
                reason = recursion_reason()
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
            f"inside it, more than {PAYLOAD_BUDGET * self._max_bytes} bytes in all "
            f"({PAYLOAD_BUDGET} x max_bytes)"
        )

    # -- the deep paths (unframed msgpack; see hitl_async.serde.deep) ---------------------------

    def _deep_dumps(self, value: Any) -> bytes:
        return deep_dumps(self._deep, value)

    def _deep_loads(self, data: bytes) -> Any:
        return deep_loads(self._deep, data)

    def _loop_dumps(self, value: Any) -> bytes:
        return loop_dumps(self._deep, value)

    def _loop_loads(self, data: bytes) -> Any:
        return loop_loads(self._deep, data)

    # -- registry ------------------------------------------------------------------------------

    def register(self, cls: type, *, name: str | None = None) -> type:
        """Allow `cls` (dataclass, Enum, NamedTuple, pydantic model) in this serializer's data.

        `name` (default `module.qualname`) is what the data stores; keep it stable across
        renames. Registering the same class again is a no-op; another class under a taken name
        is a ValueError. Returns `cls`, so it works as a class decorator.
        """
        entry = _allowed(cls, name) or prepare_entry(self._by_name, self._by_type, cls, name)
        if entry is not None:
            self._add(entry)
        return cls

    def register_types_from_annotation(self, tp: Any) -> None:
        """Register, on this serializer only, every registrable class found in annotation `tp`."""
        walk_annotation(tp, self.register)

    def _add(self, entry: Entry) -> None:
        self._by_name[entry.name] = entry
        self._by_type[entry.cls] = entry
        self._encoders[entry.cls] = registered_encoder(entry)


def _allowed(cls: type, name: str | None) -> Entry | None:
    """The allow-list's entry of `cls` when registering it would only repeat the allow-list
    (same class, no other name): it keeps its stable allow-list name."""
    if name is not None or not isinstance(cls, type):
        return None
    return langchain_entry_for_type(cls)


# -- the fast path: one pack/unpack function per extension level, the last one asks for a depth
# measurement. No shared counter, so any number of threads can use them.


def _fast_pack(encoders: dict[type, Encoder], fallback: Any, nxt: Pack) -> Pack:
    def default(obj: Any) -> Any:
        encoder = encoders.get(type(obj))
        if encoder is not None:
            return encoder(obj, nxt)
        return fallback(obj)

    pool: list[msgpack.Packer] = []

    def pack(value: Any) -> bytes:
        # Packers are pooled (3x faster than msgpack.packb, which builds one per call); a packer
        # is taken out while in use, so use from several threads is safe.
        try:
            packer = pool.pop()
        except IndexError:
            packer = new_packer(default)
        out: bytes = packer.pack(value)  # on error the packer is simply dropped
        if len(out) <= _POOL_KEEP_BYTES and len(pool) < _POOL_SIZE:
            pool.append(packer)
        return out

    return pack


def _fast_unpack(decoders: dict[int, Decoder], nxt: Unpack) -> Unpack:
    def ext_hook(code: int, data: bytes) -> Any:
        decoder = decoders.get(code)
        if decoder is None:
            raise unknown_code(code)
        try:
            return decoder(data, nxt)
        except (SerializationError, Limit):
            raise
        except Exception as exc:
            raise malformed(code, exc) from exc

    def unpack(data: bytes) -> Any:
        try:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=ext_hook)
        except msgpack.StackError:
            return unpack_peeled(data, ext_hook)

    return unpack


# -- the defaults -------------------------------------------------------------------------------

default_serializer = Serializer()
"""The serializer the engine uses unless told otherwise."""


def register_type(cls: type, *, name: str | None = None) -> type:
    """Register `cls` on `default_serializer` and for every `Serializer()` created afterwards.

    Returns `cls`, so it works as a class decorator. See `Serializer.register`.
    """
    allowed = _allowed(cls, name)
    if allowed is not None:
        default_serializer._add(allowed)
        return cls
    entry = prepare_entry(DEFAULT_BY_NAME, DEFAULT_BY_TYPE, cls, name)
    own = prepare_entry(default_serializer._by_name, default_serializer._by_type, cls, name)
    if entry is not None:
        DEFAULT_BY_NAME[entry.name] = DEFAULT_BY_TYPE[cls] = entry
    if own is not None:
        default_serializer._add(own)
    return cls


def register_types_from_annotation(tp: Any) -> None:
    """Register (as `register_type` does) every dataclass, pydantic model, Enum and NamedTuple in
    annotation `tp`, e.g. a graph's state schema, so users' own state types just work.

    Looks through Annotated, Optional/Union, list/dict/tuple/set and other generics, TypedDict
    annotations, dataclass fields and pydantic fields, recursively (cycles are fine).
    """
    walk_annotation(tp, register_type)


def register_types_from_signature(func: Any) -> None:
    """Register (as `register_types_from_annotation`) the types in a function's parameter and
    return annotations: an `@entrypoint`'s input and output and a `@task`'s arguments and result
    are stored in checkpoints as a graph's state is. Annotations that cannot be resolved are
    skipped (such values still need `register_type`)."""
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # a forward reference to a local class, a string that is no type
        return
    for hint in hints.values():
        register_types_from_annotation(hint)
