"""Byte encodings of records, hash fields and metadata filter values used by the Redis driver."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from hitl_async.checkpoint.base import (
    BlobRecord,
    CheckpointRecord,
    InboxEntry,
    RunRequest,
    WriteRecord,
)
from hitl_async.checkpoint.rows import checked_request
from hitl_async.errors import SerializationError
from hitl_async_redis._msgpack import packb, unpackb

__all__ = [
    "blob_args",
    "blob_field",
    "canonical",
    "decode_entry",
    "decode_record",
    "decode_request",
    "decode_write",
    "encode_entry",
    "encode_record",
    "encode_write",
    "hexid",
    "lex_member",
    "lp",
    "ms",
    "request_fields",
    "score",
    "text",
    "untext",
    "write_field",
]

_ERRORS = "surrogatepass"
# One encoder for every record (json.dumps with options builds one per call).
_METADATA_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
# What json.dumps(s) returns for a str s, without its Python-level dispatch.
_json_str = json.encoder.encode_basestring_ascii


def text(value: str) -> bytes:
    """UTF-8 bytes of `value` (lone surrogates kept, so every str round-trips)."""
    return value.encode("utf-8", _ERRORS)


def untext(value: bytes) -> str:
    """The inverse of `text`."""
    return value.decode("utf-8", _ERRORS)


def lp(value: bytes) -> bytes:
    """`b"<len>:<value>"`: a prefix-free code, so concatenations of such parts are unique."""
    return b"%d:%s" % (len(value), value)


def blob_field(channel: str, version: str) -> bytes:
    """Field of a blob in the blobs hash: `lp(channel) + version`."""
    return lp(text(channel)) + text(version)


def write_field(checkpoint_id: str, task_id: str, idx: int) -> bytes:
    """Field of a pending write: `lp(checkpoint_id) + lp(task_id) + idx`."""
    return lp(text(checkpoint_id)) + lp(text(task_id)) + str(idx).encode()


def canonical(value: Any, *, tuples_as_lists: bool = True) -> str | None:
    """A string equal for two values exactly when they compare equal in Python, for JSON-safe data.

    Numbers are normalized the way `==` treats them (`True == 1 == 1.0`), dicts are ordered by
    key. `None` means "equal to no JSON-safe value" (NaN; other types; tuples when
    `tuples_as_lists` is false, since a list never equals a tuple).
    """
    if value is None:
        return "n"
    if isinstance(value, bool):
        return "i1" if value else "i0"
    if isinstance(value, int):
        return f"i{value}"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return f"i{int(value)}"
        return f"f{value!r}"
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, list) or (tuples_as_lists and isinstance(value, tuple)):
        items: list[str] = []
        for v in value:
            c = canonical(v, tuples_as_lists=tuples_as_lists)
            if c is None:
                return None
            items.append(c)
        return "[" + ",".join(items) + "]"
    if isinstance(value, Mapping):
        pairs: list[tuple[str, str]] = []
        for k, v in value.items():
            ck, cv = (
                canonical(k, tuples_as_lists=tuples_as_lists),
                canonical(v, tuples_as_lists=tuples_as_lists),
            )
            if ck is None or cv is None:
                return None
            pairs.append((ck, cv))
        pairs.sort()
        return "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
    if isinstance(value, numbers.Integral):
        return canonical(int(value))
    if isinstance(value, numbers.Real):
        return canonical(float(value))
    return None


def _filter_index(metadata: Mapping[str, Any]) -> dict[str, str]:
    index: dict[str, str] = {}
    for key, value in metadata.items():
        c = canonical(value)
        if c is not None:
            index[str(key)] = c
    return index


def encode_record(record: CheckpointRecord) -> bytes:
    """`<n>:<lua part><python part>`; the Lua part is `[channel_versions, filter_index,
    created_at]` (strings only), the Python part `[parent_id, header, metadata_json]`."""
    try:
        meta = _METADATA_JSON.encode(dict(record.metadata))
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"checkpoint metadata is not JSON-safe: {exc}") from exc
    lua = packb([dict(record.channel_versions), _filter_index(record.metadata), record.created_at])
    py = packb([record.parent_id, bytes(record.header), meta])
    return b"%d:%s%s" % (len(lua), lua, py)


def decode_record(
    thread_id: str, checkpoint_ns: str, checkpoint_id: str, value: bytes
) -> CheckpointRecord:
    """The `CheckpointRecord` stored as `value` by `encode_record`."""
    colon = value.index(b":")
    end = colon + 1 + int(value[:colon])
    versions, _index, created_at = unpackb(value[colon + 1 : end])
    parent_id, header, meta = unpackb(value[end:])
    return CheckpointRecord(
        thread_id=thread_id,
        checkpoint_ns=checkpoint_ns,
        checkpoint_id=checkpoint_id,
        parent_id=parent_id,
        created_at=created_at,
        channel_versions=versions,
        header=header,
        metadata=json.loads(meta),
    )


def encode_write(write: WriteRecord) -> bytes:
    """A pending write as msgpack `[task_id, idx, channel, data, task_path]`."""
    return packb([write.task_id, write.idx, write.channel, bytes(write.data), write.task_path])


def decode_write(value: bytes) -> WriteRecord:
    """The inverse of `encode_write`."""
    task_id, idx, channel, data, task_path = unpackb(value)
    return WriteRecord(task_id=task_id, idx=idx, channel=channel, data=data, task_path=task_path)


def blob_args(blobs: Sequence[BlobRecord]) -> list[bytes]:
    """Flat `[field, data, ...]` arguments for the blobs of a commit."""
    out: list[bytes] = []
    for blob in blobs:
        out.append(blob_field(blob.channel, blob.version))
        out.append(bytes(blob.data))
    return out


# -- coordination ----------------------------------------------------------------------------


def hexid(value: str) -> str:
    """Hex of the UTF-8 bytes of `value`: safe in key names, and order-preserving."""
    return text(value).hex()


def lex_member(*parts: str) -> str:
    """An index member that sorts (byte-wise, as ZRANGEBYLEX does) like the tuple `parts`.

    Parts are hex-encoded and joined with ".": hex keeps the byte (= code point) order of each
    part and "." sorts below every hex digit, so a shorter part sorts first, as in a tuple.
    """
    return ".".join(hexid(p) for p in parts)


def encode_entry(entry: InboxEntry) -> bytes:
    """`h1:<16 hex>:` + body, the hex being the start of sha1(body) (Lua checks it with
    `redis.sha1hex`, so a damaged entry is reported, never filtered out by a garbled node or
    graph); body = `lp(node) lp(graph)` (read by Lua filters) + msgpack of the rest (strings as
    UTF-8 bytes, so every str round-trips)."""
    rest = packb(
        [
            text(entry.thread_id),
            text(entry.interrupt_id),
            text(entry.checkpoint_ns),
            bytes(entry.value),
            text(entry.created_at),
            entry.deadline,
            None if entry.on_timeout is None else bytes(entry.on_timeout),
        ]
    )
    body = lp(text(entry.node)) + lp(text(entry.graph)) + rest
    return b"h1:" + hashlib.sha1(body).hexdigest()[:16].encode() + b":" + body


def _lp_read(value: bytes, pos: int) -> tuple[bytes, int]:
    colon = value.index(b":", pos)
    end = colon + 1 + int(value[pos:colon])
    return value[colon + 1 : end], end


def decode_entry(value: bytes) -> InboxEntry:
    """The inverse of `encode_entry`; `ValueError` (or a msgpack error) for damaged data."""
    if value[:3] == b"h1:":
        value, digest = value[20:], value[3:19]
        if hashlib.sha1(value).hexdigest()[:16].encode() != digest:
            raise ValueError("its checksum does not match its bytes")
    node, pos = _lp_read(value, 0)
    graph, pos = _lp_read(value, pos)
    thread_id, iid, ns, data, created_at, deadline, on_timeout = unpackb(value[pos:])
    return InboxEntry(
        thread_id=untext(thread_id),
        interrupt_id=untext(iid),
        checkpoint_ns=untext(ns),
        node=untext(node),
        value=data,
        created_at=untext(created_at),
        deadline=deadline,
        on_timeout=on_timeout,
        graph=untext(graph),
    )


def _ms(seconds: float | None) -> bytes:
    return b"" if seconds is None else str(round(seconds * 1000)).encode()


def request_fields(request: RunRequest) -> list[bytes]:
    """Flat `[field, value, ...]` of a request's hash; optional fields are left out when None.

    `qhex`/`thex` are the hex of queue and thread (what Lua builds their key names from);
    `claim` is the claim expiry in ms since the epoch.
    """
    fields: list[bytes] = [
        b"id", text(request.id),
        b"queue", text(request.queue),
        b"thread", text(request.thread_id),
        b"payload", bytes(request.payload),
        b"status", text(request.status),
        b"created", text(request.created_at),
        b"attempts", str(int(request.attempts)).encode(),
        b"qhex", hexid(request.queue).encode(),
        b"thex", hexid(request.thread_id).encode(),
        b"member", lex_member(request.created_at, request.id).encode(),
    ]  # fmt: skip
    optional = (
        (b"owner", None if request.owner is None else text(request.owner)),
        (b"claim", None if request.claim_expires is None else _ms(request.claim_expires)),
        (b"result", request.result),
        (b"error", None if request.error is None else text(request.error)),
    )
    for name, value in optional:
        if value is not None:
            fields += [name, bytes(value)]
    return fields


def decode_request(flat: Sequence[bytes], *, lenient: bool = False) -> RunRequest:
    """A `RunRequest` from the flat `HGETALL` reply of its hash, each field checked
    (`CorruptRecordError` naming the request and its thread for a damaged hash; with `lenient`,
    the request with `damaged` set instead)."""
    h = {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}

    def opt_text(name: bytes) -> str | None:
        value = h.get(name)
        return None if value is None else untext(value)

    def number(name: bytes, scale: float) -> Any:
        value = h.get(name)
        try:
            return None if not value else int(value) / scale
        except ValueError:
            return value  # not a number: `checked_request` reports it

    return checked_request(
        {
            "id": opt_text(b"id"),
            "queue": opt_text(b"queue"),
            "thread_id": opt_text(b"thread"),
            "payload": h.get(b"payload"),
            "status": opt_text(b"status"),
            "created_at": opt_text(b"created"),
            "owner": opt_text(b"owner"),
            "claim_expires": number(b"claim", 1000),
            "attempts": number(b"attempts", 1) or 0,
            "result": h.get(b"result"),
            "error": opt_text(b"error"),
        },
        lenient=lenient,
    )


def ms(seconds: float) -> int:
    """A duration in whole milliseconds (Redis TIME and the stored expiries are in ms)."""
    if not math.isfinite(seconds):
        raise ValueError(f"ttl must be a finite number of seconds, got {seconds!r}")
    return round(seconds * 1000)


def score(value: float) -> bytes:
    """A float as a Redis score argument (`repr` round-trips; inf as Redis spells it)."""
    if math.isinf(value):
        return b"+inf" if value > 0 else b"-inf"
    return repr(float(value)).encode()
