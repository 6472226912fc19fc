"""`langgraph.pregel`'s `Pregel`, for code naming the compiled-graph type after an import rename.

In LangGraph every compiled graph (a compiled `StateGraph`, an `@entrypoint`) is a `Pregel`, so
user code writes `-> Pregel` or `isinstance(graph, Pregel)`. Here that class is
`CompiledStateGraph`, which every compiled graph of hitl-async is. LangGraph's low-level API of
building a `Pregel` by hand from channels and `NodeBuilder`s is not part of hitl-async: build
graphs with `StateGraph` or `@entrypoint`.
"""

from __future__ import annotations

from hitl_async.graph.compiled import CompiledStateGraph

__all__ = ["Pregel"]

Pregel = CompiledStateGraph
"""The type of every compiled graph (LangGraph's `langgraph.pregel.Pregel`)."""
