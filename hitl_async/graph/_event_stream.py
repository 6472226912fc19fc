"""`astream_events`: LangChain's event stream (`on_chain_start`, `on_chat_model_stream`, ...)
of a graph run, as LangGraph's compiled graphs give it through `Runnable.astream_events`.

The graph runs as one LangChain chain run (named after the graph, its chunks the stream's
`updates` as in LangGraph, its output the final state); each node is a child chain run and a
chat model called inside a node a grandchild (see `hitl_async.runnables.task_scope`), so
langchain-core's own event-stream handler sees the same tree it sees under LangGraph.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from hitl_async.runnables import GRAPH_RUN_OPEN

__all__ = ["astream_events"]


def _require_langchain_core() -> None:
    try:
        import langchain_core  # noqa: F401
    except ImportError:
        raise ImportError(
            "astream_events() needs langchain-core: pip install langchain-core"
        ) from None


def _graph_runnable(graph: Any) -> Any:
    """The graph as a langchain-core `Runnable` whose `astream` reports the run's root chain
    run to the config's callbacks."""
    from langchain_core.callbacks.manager import AsyncCallbackManager
    from langchain_core.runnables import Runnable
    from langchain_core.runnables.config import ensure_config

    class GraphRunnable(Runnable[Any, Any]):
        """A compiled hitl-async graph seen by langchain-core."""

        def __init__(self) -> None:
            self.name = graph.get_name()

        def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            return graph.invoke(input, config, **kwargs)

        async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            return await graph.ainvoke(input, config, **kwargs)

        async def astream(
            self, input: Any, config: Any = None, **kwargs: Any
        ) -> AsyncIterator[Any]:
            cfg: dict[str, Any] = dict(ensure_config(config))
            conf = cfg.get("configurable") or {}
            metadata = {"ls_integration": "langgraph", **(cfg.get("metadata") or {})}
            if conf.get("thread_id") is not None:
                metadata.setdefault("thread_id", conf["thread_id"])
            manager = AsyncCallbackManager.configure(
                cfg.get("callbacks"),
                inheritable_tags=cfg.get("tags"),
                inheritable_metadata=metadata,
            )
            root = await manager.on_chain_start(
                None,
                input,
                name=cfg.pop("run_name", None) or self.name,
                run_id=cfg.pop("run_id", None),
            )
            inner = {**cfg, "callbacks": root.get_child(), GRAPH_RUN_OPEN: True}
            requested = kwargs.pop("stream_mode", None) or "updates"
            single = isinstance(requested, str)
            modes: list[str] = [requested] if single else list(requested)
            extra = "values" not in modes
            final: Any = None
            try:
                async for item in graph.astream(
                    input, inner, stream_mode=[*modes, "values"] if extra else modes, **kwargs
                ):
                    mode, chunk = item[-2], item[-1]
                    if mode == "values":  # the output is the state, without pending interrupts
                        final = (
                            {k: v for k, v in chunk.items() if k != "__interrupt__"}
                            if isinstance(chunk, dict)
                            else chunk
                        )
                        if extra:
                            continue
                    yield chunk if single else item
            except BaseException as exc:
                await root.on_chain_error(exc)
                raise
            await root.on_chain_end(final)

    return GraphRunnable()


async def astream_events(
    graph: Any,
    input: Any,
    config: dict[str, Any] | None = None,
    *,
    version: str = "v2",
    include_names: Sequence[str] | None = None,
    include_types: Sequence[str] | None = None,
    include_tags: Sequence[str] | None = None,
    exclude_names: Sequence[str] | None = None,
    exclude_types: Sequence[str] | None = None,
    exclude_tags: Sequence[str] | None = None,
    **kwargs: Any,
) -> AsyncGenerator[Any, None]:
    """The events of a run of `graph` (see `CompiledStateGraph.astream_events`)."""
    _require_langchain_core()
    runnable = _graph_runnable(graph)
    events = runnable.astream_events(
        input,
        config,
        version=version,
        include_names=include_names,
        include_types=include_types,
        include_tags=include_tags,
        exclude_names=exclude_names,
        exclude_types=exclude_types,
        exclude_tags=exclude_tags,
        **kwargs,
    )
    try:
        async for event in events:
            yield event
    finally:  # closed early: stop the run now (its nodes cancelled), not when collected
        await events.aclose()
