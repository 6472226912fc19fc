"""Authenticated encryption of checkpoint data: AES-256-GCM around a `Serializer`.

`EncryptedSerializer` has the serializer interface (`dumps`, `loads`, `register`, ...): values are
encoded by the inner serializer, then encrypted, so the store only ever sees ciphertext. Each
value is its own row format::

    b"HAE1" | key id length (1 byte) | key id (UTF-8) | nonce (12 bytes) | ciphertext | tag (16)

The nonce is random per value. The associated data is everything before the nonce (magic, length
and key id), so a row cannot be moved to another key id, and any changed, cut or appended byte
fails authentication. Rotation: add a new key under a new id and make it `active`; rows written
under older ids still decrypt as long as their key stays in `keys`. Random 96-bit nonces are safe
for about 2**32 values per key: rotate long before that.

`cryptography` is imported only when an `EncryptedSerializer` is made (`pip install
'hitl-async[crypto]'`), so `import hitl_async` never needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hitl_async.errors import DecryptionError, SerializationError
from hitl_async.serde import HEADER_SIZE, Serializer, default_serializer

__all__ = ["KEY_SIZE", "MAGIC", "EncryptedSerializer"]

MAGIC = b"HAE1"
"""The first bytes of every encrypted value (hitl-async AES-GCM, format 1)."""

KEY_SIZE = 32
"""AES-256 keys: 32 bytes, e.g. `os.urandom(32)` or `EncryptedSerializer.generate_key()`."""

_NONCE_SIZE = 12
_TAG_SIZE = 16
_MAX_KEY_ID = 255
# The most a row adds to the inner serializer's limit: the checksum frame, the header, the tag.
_OVERHEAD = HEADER_SIZE + len(MAGIC) + 1 + _MAX_KEY_ID + _NONCE_SIZE + _TAG_SIZE


def _load_cryptography() -> tuple[Any, type[Exception]]:
    """AESGCM and InvalidTag, imported on first use with an actionable error if missing."""
    try:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:
        raise ImportError(
            "hitl_async.crypto.EncryptedSerializer needs the 'cryptography' package; install it "
            "with: pip install 'hitl-async[crypto]'"
        ) from exc
    return AESGCM, InvalidTag


class EncryptedSerializer:
    """A serializer that encrypts every value with AES-256-GCM (see the module docstring).

    `keys` maps key ids (non-empty str, at most 255 UTF-8 bytes) to 32-byte keys; `active` is the
    id new values are encrypted with. `inner` encodes the values (default: the engine's
    `default_serializer`, whose registry `register` then extends). `loads` refuses a value that is
    not encrypted unless `allow_plaintext=True`, meant only while migrating an existing store:
    every value written is encrypted either way, but while it is on, anyone who can write the
    store can plant unauthenticated plaintext rows.
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        active: str,
        *,
        inner: Serializer | None = None,
        allow_plaintext: bool = False,
    ) -> None:
        aesgcm, self._invalid_tag = _load_cryptography()
        if not isinstance(keys, Mapping) or not keys:
            raise ValueError("keys must be a non-empty mapping of key id -> 32-byte key")
        self._ciphers: dict[bytes, Any] = {}
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not key_id:
                raise ValueError(f"key ids must be non-empty str, got {key_id!r}")
            raw_id = key_id.encode("utf-8")
            if len(raw_id) > _MAX_KEY_ID:
                raise ValueError(f"key id {key_id[:20]!r}... is longer than {_MAX_KEY_ID} bytes")
            if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
                size = f"{len(key)} bytes" if isinstance(key, (bytes, bytearray)) else repr(key)
                raise ValueError(
                    f"key {key_id!r} must be {KEY_SIZE} bytes (AES-256), got {size}; make one with "
                    "EncryptedSerializer.generate_key() or os.urandom(32)"
                )
            self._ciphers[raw_id] = aesgcm(bytes(key))
        if not isinstance(active, str) or active.encode("utf-8") not in self._ciphers:
            raise ValueError(f"active key id {active!r} is not in keys ({_ids(self._ciphers)})")
        raw_active = active.encode("utf-8")
        self._active = active
        self._prefix = MAGIC + bytes([len(raw_active)]) + raw_active
        self._cipher = self._ciphers[raw_active]
        self.inner: Serializer = inner if inner is not None else default_serializer
        self.allow_plaintext = allow_plaintext

    @staticmethod
    def generate_key() -> bytes:
        """A new random 32-byte key."""
        return os.urandom(KEY_SIZE)

    @property
    def active(self) -> str:
        """The key id new values are encrypted with."""
        return self._active

    @property
    def max_bytes(self) -> int:
        """The inner serializer's limit on an encoded value (before encryption)."""
        return self.inner.max_bytes

    @property
    def max_depth(self) -> int:
        """The inner serializer's nesting limit."""
        return self.inner.max_depth

    def dumps(self, value: Any, *, channel: str | None = None) -> bytes:
        """Encode `value` with the inner serializer, then encrypt it with the active key."""
        plain = self.inner.dumps(value, channel=channel)
        nonce = os.urandom(_NONCE_SIZE)
        prefix = self._prefix
        ciphertext: bytes = self._cipher.encrypt(nonce, plain, prefix)
        return b"".join((prefix, nonce, ciphertext))

    def loads(self, data: bytes | bytearray | memoryview) -> Any:
        """Authenticate and decrypt `data` with the key it names, then decode it.

        Raises DecryptionError (a SerializationError) for a tampered, truncated or foreign value,
        an unknown key id, or a plaintext value when `allow_plaintext` is False.
        """
        if not isinstance(data, bytes):
            try:
                data = bytes(data)
            except TypeError as exc:
                raise SerializationError(
                    f"cannot decrypt checkpoint data of type {type(data).__name__}: expected bytes"
                ) from exc
        if not data.startswith(MAGIC):
            if self.allow_plaintext:
                return self.inner.loads(data)
            raise DecryptionError(
                f"checkpoint data ({len(data)} bytes) is not encrypted (no {MAGIC!r} header), and "
                "this EncryptedSerializer refuses plaintext: it was written without encryption, "
                "or by another program. While migrating a store to encryption, pass "
                "allow_plaintext=True"
            )
        max_bytes = getattr(self.inner, "max_bytes", None)
        if max_bytes is not None and len(data) > max_bytes + _OVERHEAD:
            raise DecryptionError(
                f"encrypted checkpoint data is {len(data)} bytes, more than the inner "
                f"serializer's max_bytes={max_bytes} allows; it was not decrypted. If it is "
                "legitimate, raise the limit with inner=Serializer(max_bytes=...)"
            )
        start = len(MAGIC) + 1
        id_end = start + (data[len(MAGIC)] if len(data) > len(MAGIC) else 0)
        nonce_end = id_end + _NONCE_SIZE
        if id_end == start or len(data) < nonce_end + _TAG_SIZE:
            raise DecryptionError(
                f"encrypted checkpoint data ({len(data)} bytes) is truncated or malformed: too "
                "short for its header, nonce and authentication tag"
            )
        raw_id = data[start:id_end]
        cipher = self._ciphers.get(raw_id)
        if cipher is None:
            raise DecryptionError(
                f"checkpoint data is encrypted with key id "
                f"{raw_id.decode('utf-8', 'backslashreplace')!r}, which is not among this "
                f"serializer's keys ({_ids(self._ciphers)}). Add that key to keys= (keep retired "
                "keys for as long as rows written with them exist)"
            )
        try:
            plain = cipher.decrypt(data[id_end:nonce_end], data[nonce_end:], data[:id_end])
        except self._invalid_tag:
            raise DecryptionError(
                f"encrypted checkpoint data ({len(data)} bytes, key id "
                f"{raw_id.decode('utf-8', 'backslashreplace')!r}) failed authentication: it was "
                "altered, truncated or moved to another key id after it was written, or the key "
                "under that id is not the one it was encrypted with"
            ) from None
        return self.inner.loads(plain)

    def register(self, cls: type, *, name: str | None = None) -> type:
        """Register `cls` on the inner serializer (see `Serializer.register`)."""
        return self.inner.register(cls, name=name)

    def register_types_from_annotation(self, tp: Any) -> None:
        """Register the classes in annotation `tp` on the inner serializer."""
        self.inner.register_types_from_annotation(tp)


def _ids(ciphers: Mapping[bytes, Any]) -> str:
    return ", ".join(repr(k.decode("utf-8")) for k in sorted(ciphers)) or "none"
