"""A graph's picture in other shapes: LangGraph's `get_graph().to_json()` and a langchain-core
`Graph` (for the drawings langchain-core makes: PNG, ASCII)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hitl_async.constants import END
from hitl_async.graph.drawing import START_ACTION

if TYPE_CHECKING:
    from hitl_async.graph.drawing import DrawableGraph, Node

# The ids LangGraph's JSON gives its node classes: a function node (and START) is a
# `RunnableCallable`, a compiled graph a `CompiledStateGraph`.
_CALLABLE_ID = ["langgraph", "_internal", "_runnable", "RunnableCallable"]
_GRAPH_ID = ["langgraph", "graph", "state", "CompiledStateGraph"]
_OWN_CLASS_IDS = {"ToolNode": ["langgraph", "prebuilt", "tool_node", "ToolNode"]}


def graph_json(picture: DrawableGraph) -> dict[str, list[dict[str, Any]]]:
    """`{"nodes": [...], "edges": [...]}` in the shape and order of LangGraph's `to_json()`:
    END nodes bare, every other node a runnable named by its id, metadata when it has some."""
    nodes: list[dict[str, Any]] = []
    for node in picture.nodes.values():
        out: dict[str, Any] = {"id": node.id}
        runnable_id = _runnable_id(node)
        if runnable_id is not None:
            out["type"] = "runnable"
            out["data"] = {"id": runnable_id, "name": node.id}
        if node.metadata is not None:
            out["metadata"] = node.metadata
        nodes.append(out)
    edges: list[dict[str, Any]] = []
    for edge in picture.edges:
        item: dict[str, Any] = {"source": edge.source, "target": edge.target}
        if edge.data is not None:
            item["data"] = edge.data
        if edge.conditional:
            item["conditional"] = True
        edges.append(item)
    return {"nodes": nodes, "edges": edges}


def _runnable_id(node: Node) -> list[str] | None:
    """The class id LangGraph's JSON shows for the node's runnable (None for END)."""
    if node.data is None or node.id.rsplit(":", 1)[-1] == END:
        return None
    action = getattr(node.data, "runnable", node.data)  # a Runnable node's own runnable
    if action == START_ACTION or (callable(action) and not hasattr(action, "invoke")):
        return list(_CALLABLE_ID)
    from hitl_async.graph.compiled import CompiledStateGraph

    if isinstance(action, CompiledStateGraph):
        return list(_GRAPH_ID)
    cls = type(action)
    if cls.__module__.split(".")[0] == "hitl_async":
        return list(_OWN_CLASS_IDS.get(cls.__name__, _CALLABLE_ID))
    try:
        from langchain_core.runnables import RunnableSerializable
    except ImportError:  # pragma: no cover - a Runnable node implies langchain-core
        RunnableSerializable = ()  # type: ignore[assignment,misc]
    if isinstance(action, RunnableSerializable):
        return list(action.lc_id())
    return [*cls.__module__.split("."), cls.__name__]


def langchain_graph(picture: DrawableGraph) -> Any:
    """The picture as a langchain-core `Graph`: the same nodes (ids, names, metadata) and edges."""
    try:
        from langchain_core.runnables.graph import Edge, Graph, Node
    except ImportError as exc:
        raise ImportError(
            "this drawing is made by langchain-core: pip install langchain-core "
            "(draw_mermaid() and to_json() need nothing more)"
        ) from exc
    nodes = {
        n.id: Node(id=n.id, name=n.name, data=None, metadata=n.metadata)
        for n in picture.nodes.values()
    }
    edges = [Edge(e.source, e.target, e.data, e.conditional) for e in picture.edges]
    return Graph(nodes=nodes, edges=edges)
