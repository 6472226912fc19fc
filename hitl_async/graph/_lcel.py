"""LangChain composition of a compiled graph, as LangGraph's graphs (Runnables) compose:
`graph | runnable` and `function | graph` make a langchain-core `RunnableSequence` whose graph
step invokes or streams the graph (sync and async)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any

__all__ = ["graph_runnable"]


def graph_runnable(graph: Any) -> Any:
    """`graph` as a langchain-core `Runnable` (needs langchain-core)."""
    try:
        from langchain_core.runnables import Runnable
    except ImportError as exc:
        raise ImportError(
            "composing a graph with `|` makes a LangChain RunnableSequence: "
            "pip install langchain-core"
        ) from exc
    return _runnable_class(Runnable)(graph)


@functools.cache
def _runnable_class(base: type) -> type:
    """The Runnable subclass wrapping a graph (made once, langchain-core being optional)."""

    class GraphRunnable(base):  # type: ignore[misc]
        """A compiled graph as one step of a LangChain chain: its `invoke`, `stream` and async
        forms are the graph's (the chain's config, callbacks included, passed on)."""

        def __init__(self, graph: Any) -> None:
            self.graph = graph
            self.name = graph.get_name()

        def invoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            return self.graph.invoke(input, config, **kwargs)

        async def ainvoke(self, input: Any, config: Any = None, **kwargs: Any) -> Any:
            return await self.graph.ainvoke(input, config, **kwargs)

        def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
            yield from self.graph.stream(input, config, **kwargs)

        async def astream(
            self, input: Any, config: Any = None, **kwargs: Any
        ) -> AsyncIterator[Any]:
            async for chunk in self.graph.astream(input, config, **kwargs):
                yield chunk

    return GraphRunnable
