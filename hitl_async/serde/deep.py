"""The deep paths: values whose extension types nest 4 or more levels deep.

`deep_dumps`/`deep_loads` recurse at C speed for up to `RECURSIVE_LEVELS` extension levels, then
hand over to `loop_dumps`/`loop_loads`, which use no recursion at all, so no input can exhaust
the Python or C stack. All four produce and read exactly the fast path's bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from hitl_async.errors import SerializationError
from hitl_async.serde.codecs import (
    INT_MAX,
    INT_MIN,
    Decoder,
    Encoder,
    Pack,
    Unpack,
    new_packer,
)
from hitl_async.serde.limits import (
    DICT,
    EXT,
    LIST,
    PAYLOAD_BUDGET,
    PLAIN,
    RAW_CODES,
    RECURSIVE_LEVELS,
    RECURSIVE_MAX_DEPTH,
    UNPACKB_LEVELS,
    VISIT,
    Ext,
    Limit,
    TooBig,
    TooDeep,
    UseLoop,
    collect,
    malformed,
    too_deep,
    unknown_code,
    unpack_heap,
    unpack_peeled,
    use_loop,
)

__all__ = ["DeepCodec", "deep_dumps", "deep_loads", "loop_dumps", "loop_loads"]


@dataclass(frozen=True, slots=True)
class DeepCodec:
    """What the deep paths need of a serializer: its codecs, fallback and limits."""

    encoders: dict[type, Encoder]
    decoders: dict[int, Decoder]
    fallback: Callable[[Any], Any]
    max_bytes: int
    max_depth: int


def deep_dumps(codec: DeepCodec, value: Any) -> bytes:
    """`dumps` for a value measured at most `max_depth` deep, at C speed: msgpack's packer
    with one packer per extension level (the measurement bounds its C stack). Past
    `RECURSIVE_LEVELS` levels, or Python's recursion limit, the loop version takes over."""
    if codec.max_depth > RECURSIVE_MAX_DEPTH:
        return loop_dumps(codec, value)
    encoders = codec.encoders
    budget = [PAYLOAD_BUDGET * codec.max_bytes]
    packs: list[Pack] = []

    def level(n: int) -> Pack:
        while len(packs) <= n:
            packs.append(make(len(packs)))
        return packs[n]

    def make(n: int) -> Pack:
        if n > RECURSIVE_LEVELS:
            return use_loop

        def default(obj: Any) -> Any:
            encoder = encoders.get(type(obj))
            if encoder is not None:
                return encoder(obj, level(n + 1))
            return codec.fallback(obj)

        packer = new_packer(default)  # never re-entered: nested values go one level down

        def pack(payload: Any) -> bytes:
            out: bytes = packer.pack(payload)
            if n:  # an extension value's payload
                budget[0] -= len(out)
                if budget[0] < 0:
                    raise TooBig
            return out

        return pack

    try:
        return level(0)(value)
    except (UseLoop, RecursionError):
        return loop_dumps(codec, value)


def deep_loads(codec: DeepCodec, data: bytes) -> Any:
    """`loads` past the fast path's levels, at C speed: one msgpack call per extension
    payload, with the parser's state on the heap below `UNPACKB_LEVELS` levels. Past
    `RECURSIVE_LEVELS` levels, or Python's recursion limit, the loop version takes over."""
    decoders = codec.decoders
    max_depth = codec.max_depth
    budget = [PAYLOAD_BUDGET * codec.max_bytes]
    unpacks: list[Unpack] = []

    def level(n: int) -> Unpack:
        while len(unpacks) <= n:
            unpacks.append(make(len(unpacks)))
        return unpacks[n]

    def make(n: int) -> Unpack:
        if n > max_depth:  # n extension values nested: deeper than the walk allows
            return too_deep
        if n > RECURSIVE_LEVELS:
            return use_loop

        def ext_hook(code: int, payload: bytes) -> Any:
            decoder = decoders.get(code)
            if decoder is None:
                raise unknown_code(code)
            try:
                return decoder(payload, level(n + 1))
            except (SerializationError, Limit, RecursionError):
                raise
            except Exception as exc:
                raise malformed(code, exc) from exc

        def unpack(payload: bytes) -> Any:
            if n:
                budget[0] -= len(payload)
                if budget[0] < 0:
                    raise TooBig
            if n >= UNPACKB_LEVELS:
                return unpack_heap(payload, ext_hook)
            try:
                return msgpack.unpackb(payload, raw=False, strict_map_key=False, ext_hook=ext_hook)
            except msgpack.StackError:
                return unpack_peeled(payload, ext_hook)

        return unpack

    try:
        return level(0)(data)
    except (UseLoop, RecursionError):
        return loop_loads(codec, data)


def loop_dumps(codec: DeepCodec, value: Any) -> bytes:
    """`dumps` for a measured value, without recursion: a post-order walk turns every
    extension value into its ExtType, innermost first, so nesting costs no Python or C
    stack beyond msgpack's own packing of each payload (at most `max_depth` levels)."""
    encoders = codec.encoders
    packb = new_packer(None).pack
    budget = PAYLOAD_BUDGET * codec.max_bytes
    captured: list[Any] = []

    def capture(payload: Any) -> bytes:  # stands for `pack`: the payload is packed later
        captured.append(payload)
        return b""

    results: list[Any] = []
    stack: list[tuple[int, Any]] = [(VISIT, value)]
    while stack:
        step, obj = stack.pop()
        if step == VISIT:
            tp = type(obj)
            if tp in PLAIN or (tp is int and INT_MIN <= obj <= INT_MAX):
                results.append(obj)
            elif tp is list:
                stack.append((LIST, len(obj)))
                stack.extend((VISIT, item) for item in reversed(obj))
            elif tp is dict:
                stack.append((DICT, len(obj)))
                for key, item in reversed(obj.items()):
                    stack.append((VISIT, item))
                    stack.append((VISIT, key))
            elif tp is msgpack.ExtType:
                results.append(obj)
            else:
                encoder = encoders.get(tp)
                if encoder is None:
                    stack.append((VISIT, codec.fallback(obj)))
                    continue
                ext = encoder(obj, capture)
                if captured:
                    stack.append((EXT, ext.code))
                    stack.append((VISIT, captured.pop()))
                else:
                    results.append(ext)
        elif step in (LIST, DICT):
            results.append(collect(results, step, obj))
        else:
            payload = packb(results.pop())
            budget -= len(payload)
            if budget < 0:
                raise TooBig
            results.append(msgpack.ExtType(obj, payload))
    out: bytes = packb(results[0])
    return out


def loop_loads(codec: DeepCodec, data: bytes) -> Any:
    """`loads` without recursion: extension payloads are parsed one at a time and rebuilt
    innermost first, so any nesting decodes (and is then measured against `max_depth`)."""
    decoders = codec.decoders
    max_depth = codec.max_depth
    budget = PAYLOAD_BUDGET * codec.max_bytes

    def hold(code: int, payload: bytes) -> Ext:
        if code not in decoders:
            raise unknown_code(code)
        return Ext(code, payload)

    def parse(payload: bytes) -> Any:
        try:
            return msgpack.unpackb(payload, raw=False, strict_map_key=False, ext_hook=hold)
        except msgpack.StackError:
            return unpack_peeled(payload, hold)

    def build(code: int, data: bytes, payload: Any) -> Any:
        try:
            return decoders[code](data, lambda _: payload)
        except SerializationError:
            raise
        except Exception as exc:
            raise malformed(code, exc) from exc

    results: list[Any] = []
    # (step, object, extension level): an extension value's payload is one level deeper.
    stack: list[tuple[int, Any, int]] = [(VISIT, parse(data), 0)]
    while stack:
        step, obj, level = stack.pop()
        if step == VISIT:
            tp = type(obj)
            if tp is list:
                stack.append((LIST, len(obj), level))
                stack.extend((VISIT, item, level) for item in reversed(obj))
            elif tp is dict:
                stack.append((DICT, len(obj), level))
                for key, item in reversed(obj.items()):
                    stack.append((VISIT, item, level))
                    stack.append((VISIT, key, level))
            elif tp is Ext:
                if obj.code in RAW_CODES:
                    results.append(build(obj.code, obj.data, None))
                    continue
                if level >= max_depth:  # each extension value is a level of the walk too
                    raise TooDeep
                budget -= len(obj.data)
                if budget < 0:
                    raise TooBig
                try:
                    payload = parse(obj.data)
                except SerializationError:
                    raise
                except Exception as exc:
                    raise malformed(obj.code, exc) from exc
                obj.data = b""  # parsed: keep memory linear however deep the nesting
                stack.append((EXT, obj.code, level))
                stack.append((VISIT, payload, level + 1))
            else:
                results.append(obj)
        elif step in (LIST, DICT):
            results.append(collect(results, step, obj))
        else:
            results.append(build(obj, b"", results.pop()))
    return results[0]
