"""Message state, as in `langgraph.graph.message`: `add_messages`, `MessagesState`.

Needs langchain-core (`pip install 'hitl-async[langchain]'`); importing this module without it
raises an ImportError naming that extra. The messages themselves are stored with no registration
(they are on the serializer's allow-list, see `hitl_async.serde.langchain`).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Annotated, Any, Literal, cast

from typing_extensions import TypedDict

from hitl_async.graph.state import StateGraph

try:
    from langchain_core.messages import (
        AnyMessage,
        BaseMessage,
        BaseMessageChunk,
        MessageLikeRepresentation,
        RemoveMessage,
        convert_to_messages,
        message_chunk_to_message,
    )
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the package
    raise ImportError(
        "hitl_async.graph.message (add_messages, MessagesState) needs langchain-core; install it "
        "with: pip install 'hitl-async[langchain]'"
    ) from exc

__all__ = [
    "REMOVE_ALL_MESSAGES",
    "MessageGraph",
    "Messages",
    "MessagesState",
    "add_messages",
    "push_message",
]

Messages = list[MessageLikeRepresentation] | MessageLikeRepresentation
"""What `add_messages` takes on either side: one message-like value or a list of them."""

REMOVE_ALL_MESSAGES = "__remove_all__"
"""`RemoveMessage(id=REMOVE_ALL_MESSAGES)` in an update clears the list before what follows it."""

_FORMATS = ("langchain-openai", None)


def _as_messages(values: list[Any]) -> list[Any]:
    """Message-likes (dicts, (role, text) tuples, strings, chunks) as plain messages."""
    kinds = {type(v) for v in values}
    if all(issubclass(k, BaseMessage) and not issubclass(k, BaseMessageChunk) for k in kinds):
        return values  # the usual case: nothing to convert
    converted = convert_to_messages(values)
    return [message_chunk_to_message(cast(BaseMessageChunk, m)) for m in converted]


def _merge(
    left: Messages, right: Messages, *, format: Literal["langchain-openai"] | None = None
) -> list[AnyMessage]:
    if format not in _FORMATS:
        raise ValueError(
            f"Unrecognized format={format!r}. Expected one of 'langchain-openai', None."
        )
    current = _as_messages(left if isinstance(left, list) else [left])
    update = _as_messages(right if isinstance(right, list) else [right])
    for message in current:
        if message.id is None:
            message.id = str(uuid.uuid4())
    clear_at = None
    for index, message in enumerate(update):
        if message.id is None:
            message.id = str(uuid.uuid4())
        if isinstance(message, RemoveMessage) and message.id == REMOVE_ALL_MESSAGES:
            clear_at = index
    if clear_at is not None:  # everything before the last "remove all" is gone
        return cast(list[AnyMessage], update[clear_at + 1 :])

    merged = list(current)
    position = {m.id: i for i, m in enumerate(merged)}
    removed: set[str | None] = set()
    for message in update:
        at = position.get(message.id)
        if at is None:
            if isinstance(message, RemoveMessage):
                raise ValueError(
                    f"Attempting to delete a message with an ID that doesn't exist ('{message.id}')"
                )
            position[message.id] = len(merged)
            merged.append(message)
        elif isinstance(message, RemoveMessage):
            removed.add(message.id)
        else:  # same id: the new message replaces the old one in place
            removed.discard(message.id)
            merged[at] = message
    if removed:
        merged = [m for m in merged if m.id not in removed]
    if format == "langchain-openai":
        merged = _openai_format(merged)
    return cast(list[AnyMessage], merged)


def add_messages(
    left: Messages | None = None,
    right: Messages | None = None,
    *,
    format: Literal["langchain-openai"] | None = None,
) -> Any:
    """Reducer of a list of messages: append new messages, replace those whose id exists.

    Messages without an id get a fresh UUID; a `RemoveMessage(id=...)` deletes that message (an
    unknown id is a ValueError); `RemoveMessage(id=REMOVE_ALL_MESSAGES)` drops everything before
    it. Dicts (`{"role": "user", "content": ...}`), `(role, text)` tuples, strings (human
    messages) and message chunks are converted to messages. `format="langchain-openai"` returns
    the merged list in OpenAI's content format (needs langchain-core >= 0.3.11).

    Called with only `format=` it returns the configured reducer, for
    `Annotated[list, add_messages(format="langchain-openai")]`.
    """
    if left is not None and right is not None:
        return _merge(left, right, format=format)
    if left is None and right is None:
        return cast(Callable[[Messages, Messages], Messages], partial(_merge, format=format))
    given = "left" if left is not None else "right"
    raise ValueError(
        f"Must specify non-null arguments for both 'left' and 'right'. Only received: '{given}'."
    )


def _openai_format(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    try:
        from langchain_core.messages import convert_to_openai_messages
    except ImportError:  # pragma: no cover - langchain-core < 0.3.11
        warnings.warn(
            "format='langchain-openai' needs langchain-core>=0.3.11; returning the messages "
            "unformatted",
            stacklevel=3,
        )
        return list(messages)
    return convert_to_messages(convert_to_openai_messages(messages))


class MessagesState(TypedDict):
    """A state of one key, `messages`, merged with `add_messages`."""

    messages: Annotated[list[AnyMessage], add_messages]


class MessageGraph(StateGraph):
    """LangGraph's deprecated `MessageGraph`: a graph whose whole state is one list of
    messages merged with `add_messages` (nodes get the list and return messages to add).
    Prefer `StateGraph(MessagesState)`."""

    def __init__(self) -> None:
        warnings.warn(
            "MessageGraph is deprecated (as in LangGraph 1.x): use StateGraph(MessagesState)",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(Annotated[list[AnyMessage], add_messages])


def push_message(
    message: MessageLikeRepresentation | BaseMessageChunk, *, state_key: str | None = "messages"
) -> BaseMessage:
    """From inside a node: send `message` to the `messages` stream now (if the run streams it)
    and, unless `state_key` is None, write it to that state key with the node's other writes,
    as LangGraph's `push_message`. The message needs an id (the stream and the state share it).
    """
    from hitl_async._runtime import current_scratchpad
    from hitl_async.config import get_config
    from hitl_async.stream_messages import emitter_of

    pad = current_scratchpad("push_message")
    (msg,) = convert_to_messages([message])
    if msg.id is None:
        raise ValueError("Message ID is required: push_message() needs a message with an id")
    config = get_config()
    emitter = emitter_of(config)
    if emitter is not None:
        emitter.message(dict(config.get("metadata") or {}), msg, dedupe=False)
    if state_key:
        pad.sent.append((state_key, msg))
    return msg
