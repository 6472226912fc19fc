"""LLM message events as LangGraph's server streams them, from the engine's `"messages"` mode
(`(message, metadata)` pairs, token chunks included):

- `stream_mode="messages-tuple"`: event `messages`, data `[message, metadata]`, as emitted;
- `stream_mode="messages"`: `messages/metadata` the first time a message id is seen, then
  `messages/partial` with the message accumulated so far (chunks added up, shown as a full
  message), or `messages/complete` for a message that arrived whole.
"""

from __future__ import annotations

from typing import Any

from hitl_async.server.encoding import dumps, jsonable

__all__ = ["MessageEvents"]


def _is_chunk(message: Any) -> bool:
    return type(message).__name__.endswith("Chunk") and hasattr(message, "__add__")


def _as_message(chunk: Any) -> Any:
    try:
        from langchain_core.messages import message_chunk_to_message
    except ImportError:  # pragma: no cover - chunks come from langchain-core
        return chunk
    return message_chunk_to_message(chunk)


class MessageEvents:
    """Turns one run's `(message, metadata)` items into SSE `(event, data)` pairs."""

    def __init__(self, client_modes: set[str]) -> None:
        self.tuples = "messages-tuple" in client_modes
        self.accumulate = "messages" in client_modes
        self._seen: dict[str, Any] = {}

    def events(self, item: Any, suffix: str = "") -> list[tuple[str, str]]:
        message, metadata = item if isinstance(item, tuple) and len(item) == 2 else (item, {})
        out: list[tuple[str, str]] = []
        if self.tuples:
            out.append(("messages" + suffix, dumps([message, metadata])))
        if not self.accumulate:
            return out
        msg_id = getattr(message, "id", None) or str(id(message))
        if msg_id not in self._seen:
            out.append(("messages/metadata" + suffix, dumps({msg_id: {"metadata": metadata}})))
        if _is_chunk(message):
            total = self._seen.get(msg_id)
            total = message if total is None else total + message
            self._seen[msg_id] = total
            out.append(("messages/partial" + suffix, dumps([jsonable(_as_message(total))])))
        else:
            self._seen[msg_id] = message
            out.append(("messages/complete" + suffix, dumps([jsonable(message)])))
        return out
