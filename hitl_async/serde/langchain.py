"""langchain-core messages (and documents) on the allow-list, with no registration.

Agents keep `MessagesState` of langchain-core messages, so their classes are part of the
serializer's built-in allow-list. They are found lazily: encoding looks at a value whose class
comes from `langchain_core` (so langchain-core is already imported), and decoding maps a stored
name to a class through the fixed table below, importing only `langchain_core.messages` /
`langchain_core.documents` — never a module the data names. Tool calls, invalid tool calls, usage
metadata and content blocks are TypedDicts (plain dicts), so they need nothing.

The stored names are the public import paths (`langchain_core.messages.AIMessage`), stable across
langchain-core's internal module moves.
"""

from __future__ import annotations

import importlib

from hitl_async.errors import SerializationError
from hitl_async.serde.registry import Entry, make_entry

__all__ = ["LANGCHAIN_NAMES", "langchain_entry_for_name", "langchain_entry_for_type"]

_MESSAGES = "langchain_core.messages"
_DOCUMENTS = "langchain_core.documents"

_CLASSES: dict[str, tuple[str, ...]] = {
    _MESSAGES: (
        "AIMessage",
        "AIMessageChunk",
        "HumanMessage",
        "HumanMessageChunk",
        "SystemMessage",
        "SystemMessageChunk",
        "ToolMessage",
        "ToolMessageChunk",
        "FunctionMessage",
        "FunctionMessageChunk",
        "ChatMessage",
        "ChatMessageChunk",
        "RemoveMessage",
    ),
    _DOCUMENTS: ("Document",),
}

LANGCHAIN_NAMES: dict[str, tuple[str, str]] = {
    f"{module}.{attr}": (module, attr) for module, attrs in _CLASSES.items() for attr in attrs
}
"""Stored name -> (module, class name) of every langchain-core class on the allow-list."""

_by_type: dict[type, Entry] | None = None
_by_name: dict[str, Entry] = {}


def _load() -> dict[type, Entry]:
    """Entries of every allow-listed class (imports langchain-core's two public modules)."""
    global _by_type
    if _by_type is None:
        found: dict[type, Entry] = {}
        for name, (module, attr) in LANGCHAIN_NAMES.items():
            cls = getattr(importlib.import_module(module), attr, None)
            if isinstance(cls, type):
                entry = make_entry(cls, name)
                found[cls] = entry
                _by_name[name] = entry
        _by_type = found
    return _by_type


def langchain_entry_for_type(tp: type) -> Entry | None:
    """The entry of `tp` if it is an allow-listed langchain-core class (exactly, not a
    subclass), else None. Only looks when `tp` comes from langchain_core."""
    if not tp.__module__.startswith("langchain_core."):
        return None
    return _load().get(tp)


def langchain_entry_for_name(name: str) -> Entry | None:
    """The entry stored under `name` if it is on the allow-list, else None.

    Raises SerializationError when the name is allow-listed but langchain-core is not
    installed, naming the extra that provides it.
    """
    if name not in LANGCHAIN_NAMES:
        return None
    try:
        _load()
    except ImportError as exc:
        raise SerializationError(
            f"cannot deserialize {name!r}: the data holds langchain-core messages and "
            "langchain-core is not installed. Fix: pip install 'hitl-async[langchain]'"
        ) from exc
    return _by_name.get(name)
