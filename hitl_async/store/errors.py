"""Errors of the long-term memory store: bad requests are refused before anything is written."""

from __future__ import annotations

from hitl_async.errors import HitlError, SerializationError

__all__ = [
    "InvalidFilterError",
    "InvalidIndexConfigError",
    "InvalidNamespaceError",
    "InvalidStoreRequestError",
    "StoreCorruptError",
    "StoreValueError",
]


class InvalidStoreRequestError(HitlError, ValueError):
    """A store call's arguments are invalid (a negative limit, a key with a NUL, ...)."""


class InvalidNamespaceError(InvalidStoreRequestError):
    """A namespace is empty, has an empty label, a label with a '.', or a reserved root.

    Named as in `langgraph.store.base`, and like it a `ValueError`.
    """


class InvalidFilterError(InvalidStoreRequestError):
    """A search filter uses an unknown operator or an operand that cannot be compared."""


class InvalidIndexConfigError(InvalidStoreRequestError):
    """The `index=` configuration is unusable (no `embed`, bad `dims`, vectors of another size)."""


class StoreValueError(SerializationError):
    """A value given to `put()` is not a JSON document (a dict of JSON values): it names the
    namespace, the key and the path of the offending part."""


class StoreCorruptError(SerializationError):
    """A stored item cannot be decoded: its bytes are damaged or were not written by this store."""
