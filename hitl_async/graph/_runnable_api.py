"""The LangChain `Runnable` methods LangGraph's compiled graphs have and ported code calls:
`with_config`, `batch`/`abatch` (and `_as_completed`), `get_name`, `|` composition, the input,
output and context schemas (`input_schema`, `get_input_jsonschema()`...), `get_subgraphs`, and
`astream_events` (see `hitl_async.graph._event_stream`)."""

from __future__ import annotations

import asyncio
import dataclasses
import typing
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any, Self

from hitl_async.graph._event_stream import astream_events
from hitl_async.graph._lcel import graph_runnable
from hitl_async.runnables import merge_configs

if TYPE_CHECKING:
    from hitl_async.graph.state import StateGraph

__all__ = ["RunnableApi", "json_schema"]


def _configs(config: Any, n: int) -> list[dict[str, Any] | None]:
    """One config per input: a list as given (its length must match), else `config` n times."""
    if isinstance(config, Sequence) and not isinstance(config, str | bytes):
        configs = list(config)
        if len(configs) != n:
            raise ValueError(f"batch() got {n} inputs but {len(configs)} configs; give one each")
        return configs
    return [config] * n


def json_schema(schema: Any, title: str) -> dict[str, Any]:
    """The JSON schema of a state/input/output/context class (pydantic's reading of it)."""
    from pydantic import TypeAdapter

    try:
        found: dict[str, Any] = TypeAdapter(schema).json_schema()
    except Exception:  # a schema pydantic cannot read: its keys, untyped
        hints = typing.get_type_hints(schema) if hasattr(schema, "__annotations__") else {}
        found = {"type": "object", "properties": {k: {} for k in hints}}
    found.setdefault("title", title)
    if dataclasses.is_dataclass(schema) and found.get("required"):
        hints = typing.get_type_hints(schema)
        found["required"] = [k for k in found["required"] if not _optional(hints.get(k))]
    return found


def _optional(hint: Any) -> bool:
    """Whether a type admits None (`X | None`, `Optional[X]`): a dataclass field so typed is not
    required in the JSON schema even without a default, as in LangGraph's."""
    return hint is None or hint is type(None) or type(None) in typing.get_args(hint)


def _model(schema: Any, name: str) -> Any:
    """A pydantic model for a schema: a model as is, else one with the schema's keys."""
    from pydantic import BaseModel, create_model

    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema
    if schema is None:
        return create_model(name)
    hints = typing.get_type_hints(schema, include_extras=True)
    if dataclasses.is_dataclass(schema):
        hints = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(schema)}
    fields: dict[str, Any] = {key: (hint | None, None) for key, hint in hints.items()}
    return create_model(name, **fields)


class RunnableApi:
    """LangChain `Runnable` methods on a compiled graph (mixed into `CompiledStateGraph`)."""

    name: str
    builder: StateGraph
    config: dict[str, Any] | None = None
    """Merged into every call's config (`with_config`), as LangGraph's `Pregel.config`."""

    if TYPE_CHECKING:

        def invoke(
            self, input: Any, config: dict[str, Any] | None = None, **kwargs: Any
        ) -> Any: ...

        async def ainvoke(
            self, input: Any, config: dict[str, Any] | None = None, **kwargs: Any
        ) -> Any: ...

        def with_checkpointer(self, checkpointer: Any) -> Self: ...

        def subgraphs_of(self, node: str) -> list[Any]: ...

    # -- naming and config ---------------------------------------------------------------------

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        """The graph's name (`compile(name=...)`, "LangGraph" by default), with `suffix`."""
        base = name or self.name
        if not suffix:
            return base
        # LangChain's rule: "Graph" + "Input", or "my_graph" + "_input".
        return base + suffix.title() if base[:1].isupper() else f"{base}_{suffix.lower()}"

    def with_config(self, config: dict[str, Any] | None = None, **kwargs: Any) -> Self:
        """A copy of the graph whose calls run with `config` (and `kwargs` as config keys:
        `recursion_limit=`, `configurable=`, `tags=`...) merged under each call's own."""
        new = self.with_checkpointer(getattr(self, "checkpointer", None))
        new.config = merge_configs(self.config, config, kwargs)
        return new

    # -- LangChain composition -----------------------------------------------------------------

    def __or__(self, other: Any) -> Any:
        """`graph | runnable`: a LangChain `RunnableSequence` running the graph first."""
        return graph_runnable(self) | other

    def __ror__(self, other: Any) -> Any:
        """`function | graph`: a LangChain `RunnableSequence` running the graph last."""
        return graph_runnable(self).__ror__(other)

    # -- batches -------------------------------------------------------------------------------

    def batch(
        self,
        inputs: Sequence[Any],
        config: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """`invoke` each input (concurrently, in threads), results in the inputs' order; with
        `return_exceptions` an input's error is its result instead of raised."""
        inputs = list(inputs)
        if not inputs:
            return []
        configs = _configs(config, len(inputs))
        limit = max((c or {}).get("max_concurrency") or 0 for c in configs) or None

        def one(pair: tuple[Any, dict[str, Any] | None]) -> Any:
            try:
                return self.invoke(pair[0], pair[1], **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return exc
                raise

        if len(inputs) == 1:
            return [one((inputs[0], configs[0]))]
        with ThreadPoolExecutor(max_workers=limit or min(len(inputs), 32)) as pool:
            return list(pool.map(one, zip(inputs, configs, strict=True)))

    async def abatch(
        self,
        inputs: Sequence[Any],
        config: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """`ainvoke` each input concurrently; results in the inputs' order."""
        inputs = list(inputs)
        configs = _configs(config, len(inputs))
        limit = max((c or {}).get("max_concurrency") or 0 for c in configs) or None
        gate = asyncio.Semaphore(limit) if limit else None

        async def one(item: Any, cfg: dict[str, Any] | None) -> Any:
            if gate is None:
                return await self.ainvoke(item, cfg, **kwargs)
            async with gate:
                return await self.ainvoke(item, cfg, **kwargs)

        results = await asyncio.gather(
            *(one(i, c) for i, c in zip(inputs, configs, strict=True)),
            return_exceptions=return_exceptions,
        )
        return list(results)

    def batch_as_completed(
        self,
        inputs: Sequence[Any],
        config: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> Iterator[tuple[int, Any]]:
        """`(index, result)` for each input as its run finishes."""
        inputs = list(inputs)
        configs = _configs(config, len(inputs))
        if not inputs:
            return
        with ThreadPoolExecutor(max_workers=min(len(inputs), 32)) as pool:
            futures = {
                pool.submit(self.invoke, item, cfg, **kwargs): i
                for i, (item, cfg) in enumerate(zip(inputs, configs, strict=True))
            }
            for future in as_completed(futures):
                error = future.exception()
                if error is not None and not return_exceptions:
                    raise error
                yield futures[future], error if error is not None else future.result()

    async def abatch_as_completed(
        self,
        inputs: Sequence[Any],
        config: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> AsyncIterator[tuple[int, Any]]:
        """`(index, result)` for each input as its run finishes."""
        inputs = list(inputs)
        configs = _configs(config, len(inputs))

        async def one(i: int, item: Any, cfg: dict[str, Any] | None) -> tuple[int, Any]:
            try:
                return i, await self.ainvoke(item, cfg, **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return i, exc
                raise

        tasks = [
            asyncio.ensure_future(one(i, item, cfg))
            for i, (item, cfg) in enumerate(zip(inputs, configs, strict=True))
        ]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:
            for task in tasks:
                task.cancel()

    # -- schemas -------------------------------------------------------------------------------

    @property
    def context_schema(self) -> Any:
        """The class of the run's `context` (`StateGraph(context_schema=...)`), if any."""
        return self.builder.context_schema

    @property
    def input_schema(self) -> Any:
        """A pydantic model of the graph's input (its input schema's keys)."""
        return self.get_input_schema()

    @property
    def output_schema(self) -> Any:
        """A pydantic model of the graph's output (its output schema's keys)."""
        return self.get_output_schema()

    def get_input_schema(self, config: dict[str, Any] | None = None) -> Any:
        """A pydantic model of the graph's input."""
        return _model(self.builder.input_schema.schema, self.get_name("Input"))

    def get_output_schema(self, config: dict[str, Any] | None = None) -> Any:
        """A pydantic model of the graph's output."""
        return _model(self.builder.output_schema.schema, self.get_name("Output"))

    def get_input_jsonschema(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON schema of the graph's input."""
        return json_schema(self.builder.input_schema.schema, self.get_name("Input"))

    def get_output_jsonschema(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON schema of the graph's output."""
        return json_schema(self.builder.output_schema.schema, self.get_name("Output"))

    def get_context_jsonschema(self) -> dict[str, Any] | None:
        """The JSON schema of the run's context, or None without a `context_schema`."""
        schema = self.builder.context_schema
        return None if schema is None else json_schema(schema, self.get_name("Context"))

    # -- subgraphs -----------------------------------------------------------------------------

    def get_subgraphs(
        self, *, namespace: str | None = None, recurse: bool = False
    ) -> Iterator[tuple[str, Any]]:
        """`(namespace, compiled subgraph)` for each subgraph a node runs (nested ones as
        `parent|child` with `recurse`); `namespace` keeps only that one."""
        for node in self.builder.nodes:
            for graph in self.subgraphs_of(node):
                if namespace is not None and not namespace.startswith(node):
                    continue
                if namespace is None or namespace == node:
                    yield node, graph
                if recurse and isinstance(graph, RunnableApi):
                    inner = None if namespace in (None, node) else namespace[len(node) + 1 :]
                    for name, sub in graph.get_subgraphs(namespace=inner, recurse=True):
                        yield f"{node}|{name}", sub

    async def astream_events(
        self,
        input: Any,
        config: dict[str, Any] | None = None,
        *,
        version: str = "v2",
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """LangChain's event stream of a run (`on_chain_start`/`_stream`/`_end` for the graph
        and each node, `on_chat_model_stream` for each token of a chat model called in a
        node...), as LangGraph's graphs give it; needs langchain-core. Keyword arguments are
        `astream_events`' filters (`include_names=`...) and `astream`'s (`stream_mode=`...)."""
        events = astream_events(self, input, config, version=version, **kwargs)
        try:
            async for event in events:
                yield event
        finally:  # closed early: close the run's stream too (see `astream_events`)
            await events.aclose()

    async def aget_subgraphs(
        self, *, namespace: str | None = None, recurse: bool = False
    ) -> AsyncIterator[tuple[str, Any]]:
        """Async `get_subgraphs`."""
        for item in self.get_subgraphs(namespace=namespace, recurse=recurse):
            yield item
