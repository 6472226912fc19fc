"""`stream_mode="messages"`: `(message_chunk, metadata)` for every token a LangChain chat model
streams inside a node, and for every message a node returns that was not streamed already.

Two parts, behind a narrow interface for the run's event stream:

- `MessagesEmitter(emit, subgraphs=..., parent_ns=...)` is plain Python: it decides what to emit
  (ids already seen are not emitted twice, `nostream`-tagged models are skipped, subgraphs are
  filtered as in LangGraph) and calls `emit(namespace, (message, metadata))`. Without
  langchain-core it still emits the messages nodes return (`emitter.node_output(info_metadata,
  output)`), which is all there is to stream then.
- `messages_handler(emitter)` is the langchain-core callback handler that feeds it: chat-model
  tokens (`on_llm_new_token`; it declares itself a streaming handler, so a model called with
  `.invoke()` inside a node streams too), final model messages (`on_llm_end`) and node outputs
  (`on_chain_end` of a task's chain run, see `hitl_async.runnables.task_scope`). Add it to the
  run's config with `with_handler(config, handler)`.

Metadata is LangGraph's: the task's `langgraph_node`, `langgraph_step`, `langgraph_triggers`,
`langgraph_path`, `langgraph_checkpoint_ns`, `thread_id`, the run's own metadata, and for model
tokens the model's `ls_*` keys; `tags` holds the model's user tags. Filter per node or per model
on the consumer side (`metadata["langgraph_node"]`, `metadata["tags"]`), as with LangGraph;
a model made with `tags=["nostream"]` is not streamed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID, uuid4

__all__ = [
    "NOSTREAM",
    "MessagesEmitter",
    "emitter_of",
    "graph_namespace",
    "is_message",
    "messages_handler",
    "with_handler",
    "with_messages_stream",
]

NOSTREAM = "nostream"
"""The tag that keeps a chat model out of the `messages` stream."""

_HIDDEN = "langsmith:hidden"
_INTERNAL_TAG_PREFIXES = ("seq:step:", "graph:step:", "langsmith:")

Emit = Callable[[tuple[str, ...], tuple[Any, dict[str, Any]]], None]


def graph_namespace(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """The namespace of the graph a task runs in: its checkpoint namespace without the task's
    own `node:task_id` segment (`()` for the root graph)."""
    ns = str(metadata.get("langgraph_checkpoint_ns", ""))
    parts = tuple(ns.split("|")) if ns else ()
    return parts[:-1]


def is_message(value: Any) -> bool:
    """A langchain-core message (checked without importing langchain-core), or a message as a
    dict (`{"role": ..., "content": ...}`, what nodes write without langchain-core)."""
    if type(value) is dict:
        return "content" in value and ("role" in value or "type" in value)
    return any(
        c.__name__ == "BaseMessage" and c.__module__.startswith("langchain_core.")
        for c in type(value).__mro__
    )


def _message_id(message: Any) -> Any:
    return message.get("id") if type(message) is dict else message.id


def _with_id(message: Any) -> Any:
    """`message` with a new id: a dict is copied (the node's update is streamed as written, as
    in LangGraph), a langchain-core message gets it in place (as LangGraph's handler does)."""
    if type(message) is dict:
        return {**message, "id": str(uuid4())}
    message.id = str(uuid4())
    return message


def _user_tags(tags: Sequence[str] | None) -> list[str] | None:
    if not tags:
        return None
    kept = [t for t in tags if not t.startswith(_INTERNAL_TAG_PREFIXES)]
    return kept or None


def _state_values(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, Mapping):
        return [getattr(value, name, None) for name in fields]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [getattr(value, f.name) for f in dataclasses.fields(value)]
    return []


class MessagesEmitter:
    """Decides which messages reach the `messages` stream and emits them (see the module)."""

    def __init__(
        self, emit: Emit, *, subgraphs: bool = False, parent_ns: tuple[str, ...] = ()
    ) -> None:
        self.emit = emit
        self.subgraphs = subgraphs
        self.parent_ns = parent_ns
        self.seen: set[str] = set()
        self.dict_messages = True
        """Whether dict messages stream: only without langchain-core (with it, LangGraph
        streams only `BaseMessage`s a node returns; `add_messages` coerces dicts later)."""

    def wants(self, metadata: Mapping[str, Any]) -> bool:
        """Whether messages of a task with `metadata` are streamed (subgraphs only when asked)."""
        ns = graph_namespace(metadata)
        return self.subgraphs or not ns or ns == self.parent_ns

    def message(self, metadata: dict[str, Any], message: Any, *, dedupe: bool) -> None:
        """Emit one message or chunk; with `dedupe`, not if its id was emitted already."""
        known = _message_id(message)
        if dedupe and known is not None and known in self.seen:
            return
        if known is None:
            message = _with_id(message)
        self.seen.add(_message_id(message))
        if "ls_integration" not in metadata:  # LangGraph's tracing tag, on every message
            metadata = {"ls_integration": "langgraph", **metadata}
        self.emit(graph_namespace(metadata), (message, metadata))

    def mark_seen(self, value: Any) -> None:
        """Messages a node was given (its input): not emitted again if it returns them."""
        for item in _state_values(value):
            for message in item if isinstance(item, list) else (item,):
                if is_message(message) and _message_id(message) is not None:
                    self.seen.add(_message_id(message))

    def node_output(self, metadata: dict[str, Any], output: Any) -> None:
        """Emit the messages a node returned (directly, in a list, in a state update or in a
        `Command`'s update) that were not streamed already."""
        if not self.wants(metadata):
            return
        for value in self._updates(output):
            if self._streams(value):
                self.message(metadata, value, dedupe=True)
                continue
            for item in value if isinstance(value, list | tuple) else _state_values(value):
                for message in item if isinstance(item, list | tuple) else (item,):
                    if self._streams(message):
                        self.message(metadata, message, dedupe=True)

    def _streams(self, value: Any) -> bool:
        return is_message(value) and (self.dict_messages or type(value) is not dict)

    @staticmethod
    def _updates(output: Any) -> list[Any]:
        from hitl_async.types import Command

        # A Command for the parent graph ends the node with an error-like bubble-up in
        # LangGraph, so its update's messages are not streamed (the parent's node owns them).
        if isinstance(output, Command):
            return [] if output.graph == Command.PARENT else [output.update]
        if isinstance(output, list) and any(isinstance(v, Command) for v in output):
            return [
                v.update if isinstance(v, Command) else v
                for v in output
                if not (isinstance(v, Command) and v.graph == Command.PARENT)
            ]
        return [output]


def with_handler(config: Mapping[str, Any], handler: Any) -> dict[str, Any]:
    """`config` with `handler` added to its callbacks (a list or a callback manager)."""
    callbacks = config.get("callbacks")
    out = dict(config)
    if callbacks is None:
        out["callbacks"] = [handler]
    elif isinstance(callbacks, list):
        out["callbacks"] = [*callbacks, handler]
    else:  # a langchain-core callback manager
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        out["callbacks"] = manager
    return out


def emitter_of(config: Mapping[str, Any]) -> MessagesEmitter | None:
    """The `MessagesEmitter` of the run whose task has `config`, if it streams `messages`."""
    callbacks = config.get("callbacks")
    handlers = callbacks if isinstance(callbacks, list) else getattr(callbacks, "handlers", None)
    for handler in handlers or ():
        emitter = getattr(handler, "emitter", None)
        if isinstance(emitter, MessagesEmitter):
            return emitter
    return None


def with_messages_stream(config: Mapping[str, Any], emitter: MessagesEmitter) -> dict[str, Any]:
    """`config` for a run streaming `messages` into `emitter`: with langchain-core, the callback
    handler (model tokens and node outputs); without it, a sink told each node's output."""
    try:
        handler = messages_handler(emitter)
    except ImportError:
        from hitl_async.runnables import NODE_OUTPUT_SINK

        def sink(metadata: dict[str, Any], inputs: Any, output: Any) -> None:
            emitter.mark_seen(inputs)
            emitter.node_output(metadata, output)

        return {**config, NODE_OUTPUT_SINK: sink}
    emitter.dict_messages = False
    return with_handler(config, handler)


def messages_handler(emitter: MessagesEmitter) -> Any:
    """The langchain-core callback handler feeding `emitter` (needs langchain-core)."""
    return _handler_class()(emitter)


_HANDLER: type | None = None


def _handler_class() -> type:
    global _HANDLER
    if _HANDLER is None:
        _HANDLER = _define_handler()
    return _HANDLER


def _define_handler() -> type:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk

    streaming: Any = object
    try:  # the marker that makes BaseChatModel.invoke() stream through callbacks
        from langchain_core.tracers._streaming import _StreamingCallbackHandler

        streaming = _StreamingCallbackHandler
    except ImportError:  # pragma: no cover - older langchain-core
        pass

    class StreamMessagesHandler(BaseCallbackHandler, streaming):  # type: ignore[misc]
        """Feeds a `MessagesEmitter` from chat-model and node-run callbacks."""

        run_inline = True  # in the order events happen, on the caller's thread

        def __init__(self, emitter: MessagesEmitter) -> None:
            self.emitter = emitter
            self.runs: dict[UUID, dict[str, Any]] = {}

        def tap_output_aiter(self, run_id: UUID, output: Any) -> Any:
            return output

        def tap_output_iter(self, run_id: UUID, output: Any) -> Any:
            return output

        def on_chat_model_start(
            self,
            serialized: dict[str, Any],
            messages: list[list[Any]],
            *,
            run_id: UUID,
            tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            if not metadata or "langgraph_node" not in metadata or NOSTREAM in (tags or ()):
                return
            if not self.emitter.wants(metadata):
                return
            meta = dict(metadata)
            user = _user_tags(tags)
            if user is not None:
                meta["tags"] = user
            self.runs[run_id] = meta

        def on_llm_new_token(
            self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any
        ) -> None:
            meta = self.runs.get(run_id)
            if meta is not None and isinstance(chunk, ChatGenerationChunk):
                self.emitter.message(meta, chunk.message, dedupe=False)

        def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
            meta = self.runs.pop(run_id, None)
            generations = getattr(response, "generations", None)
            if meta is not None and generations and generations[0]:
                first = generations[0][0]
                if isinstance(first, ChatGeneration):
                    self.emitter.message(meta, first.message, dedupe=True)

        def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
            self.runs.pop(run_id, None)

        def on_chain_start(
            self,
            serialized: dict[str, Any] | None,
            inputs: Any,
            *,
            run_id: UUID,
            tags: list[str] | None = None,
            metadata: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            if not metadata or kwargs.get("name") != metadata.get("langgraph_node"):
                return
            if _HIDDEN in (tags or ()) or not self.emitter.wants(metadata):
                return
            self.runs[run_id] = dict(metadata)
            self.emitter.mark_seen(inputs)

        def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
            meta = self.runs.pop(run_id, None)
            if meta is not None:
                self.emitter.node_output(meta, outputs)

        def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
            self.runs.pop(run_id, None)

    return StreamMessagesHandler
