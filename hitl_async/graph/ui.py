"""Generative-UI messages, as in `langgraph.graph.ui` (what Agent Chat UI renders): a node
pushes a UI component with `push_ui_message`, which streams it as a `"custom"` event and writes
it to the state's `ui` key, whose `ui_message_reducer` replaces, merges or removes messages by id.

```python
class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    ui: Annotated[list[AnyUIMessage], ui_message_reducer]
```
"""

from __future__ import annotations

from typing import Any, Literal, cast
from uuid import uuid4

from typing_extensions import TypedDict

from hitl_async._runtime import current_scratchpad, get_config, get_stream_writer

__all__ = (
    "AnyUIMessage",
    "RemoveUIMessage",
    "UIMessage",
    "delete_ui_message",
    "push_ui_message",
    "ui_message_reducer",
)


class UIMessage(TypedDict):
    """A UI component to render: its `name`, the `props` it is given, and `metadata` (whether
    to `merge` props into an earlier message of the same id, the run, the message it goes with)."""

    type: Literal["ui"]
    id: str
    name: str
    props: dict[str, Any]
    metadata: dict[str, Any]


class RemoveUIMessage(TypedDict):
    """Removes the UI message of `id`."""

    type: Literal["remove-ui"]
    id: str


AnyUIMessage = UIMessage | RemoveUIMessage


def _message_id(message: Any) -> Any:
    """The id of a LangChain message or of its dict form (None without one)."""
    if isinstance(message, dict):
        return message.get("id")
    return getattr(message, "id", None)


def push_ui_message(
    name: str,
    props: dict[str, Any],
    *,
    id: str | None = None,
    metadata: dict[str, Any] | None = None,
    message: Any = None,
    state_key: str | None = "ui",
    merge: bool = False,
) -> UIMessage:
    """Stream a UI message (custom mode) from inside a node and, unless `state_key` is None,
    write it to that state key (before the node's own writes). `id` defaults to a new UUID;
    `merge=True` merges `props` into those of the earlier message of the same id; `message`
    links it to a chat message (its id goes into the metadata as `message_id`)."""
    config = get_config()
    message_id = _message_id(message) if message else None
    event: UIMessage = {
        "type": "ui",
        "id": id or str(uuid4()),
        "name": name,
        "props": props,
        "metadata": {
            "merge": merge,
            "run_id": config.get("run_id"),
            "tags": config.get("tags") or None,  # LangGraph's node config has no empty tags
            "name": config.get("run_name"),
            **(metadata or {}),
            **({"message_id": message_id} if message_id else {}),
        },
    }
    _emit(event, state_key)
    return event


def delete_ui_message(id: str, *, state_key: str = "ui") -> RemoveUIMessage:
    """Stream the removal of the UI message of `id` (custom mode) and write it to `state_key`,
    whose reducer then drops that message."""
    current_scratchpad("delete_ui_message")
    event: RemoveUIMessage = {"type": "remove-ui", "id": id}
    _emit(event, state_key)
    return event


def _emit(event: AnyUIMessage, state_key: str | None) -> None:
    get_stream_writer()(event)
    if state_key:
        current_scratchpad("push_ui_message").sent.append((state_key, event))


def ui_message_reducer(
    left: list[AnyUIMessage] | AnyUIMessage, right: list[AnyUIMessage] | AnyUIMessage
) -> list[AnyUIMessage]:
    """The `ui` key's reducer: a message replaces the one of its id in place (its props merged
    in when its metadata says `merge`), a new id is appended, a `remove-ui` drops its id (a
    `ValueError` when no message has that id); a message after a removal of its id keeps it."""
    merged = list(left) if isinstance(left, list) else [left]
    position = {m.get("id"): i for i, m in enumerate(merged)}
    removed: set[Any] = set()
    for msg in right if isinstance(right, list) else [right]:
        msg_id = msg.get("id")
        index = position.get(msg_id)
        if msg.get("type") == "remove-ui":
            if index is None:
                raise ValueError(
                    f"Attempting to delete an UI message with an ID that doesn't exist ('{msg_id}')"
                )
            removed.add(msg_id)
            continue
        if index is None:
            position[msg_id] = len(merged)
            merged.append(msg)
            continue
        removed.discard(msg_id)
        shown = cast(UIMessage, msg)
        if shown.get("metadata", {}).get("merge", False):
            earlier = cast(UIMessage, merged[index])
            shown = {**shown, "props": {**earlier["props"], **shown["props"]}}
        merged[index] = shown
    return [m for m in merged if m.get("id") not in removed]
