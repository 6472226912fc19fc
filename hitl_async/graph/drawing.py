"""A picture of a compiled graph: nodes, edges and conditional edges, drawn as a Mermaid flowchart
(`graph.get_graph().draw_mermaid()`), with subgraphs drawn inside their node."""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hitl_async.constants import END, START

if TYPE_CHECKING:
    from hitl_async.graph.state import BranchSpec, StateGraph

__all__ = ["DrawableGraph", "Edge"]


@dataclass(frozen=True, slots=True)
class Edge:
    """An edge of the picture; `conditional` edges are drawn dotted, with their label if any."""

    source: str
    target: str
    conditional: bool = False
    label: str | None = None


@dataclass
class DrawableGraph:
    """Nodes and edges of a graph, with the subgraphs of subgraph nodes."""

    name: str
    nodes: list[str]
    edges: list[Edge]
    subgraphs: dict[str, DrawableGraph] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per node, what LangGraph's picture shows under its name (`defer`, `__interrupt`,
    `__tools`, the node's own metadata)."""

    @classmethod
    def of(
        cls,
        builder: StateGraph,
        name: str,
        xray: bool | int = False,
        interrupts: tuple[Any, Any] = (None, None),
    ) -> DrawableGraph:
        """The picture of `builder`; with `xray`, subgraphs drawn inside their node (`True`:
        all levels, a number: that many), as LangGraph's `get_graph(xray=...)`. Edges come in
        LangGraph's order: sorted, then the edges of nodes that end the graph."""
        nodes = [START, *builder.nodes, END]
        edges: list[Edge] = [Edge(s, t) for s, t in builder.edge_order if t != END]
        for starts, target in builder.waiting_edges:
            edges += [Edge(s, target) for s in starts]
        for branches in builder.branches.values():
            for branch in branches:
                edges += _branch_edges(builder, branch)
        for spec in builder.nodes.values():
            targets = spec.destinations or _command_targets(spec.fn)
            edges += [
                Edge(spec.name, d, conditional=True)
                for d in targets
                if d in builder.nodes or d == END
            ]
        deeper = xray if xray is True else int(xray) - 1
        subgraphs = {
            n: DrawableGraph.of(spec.subgraph.builder, n, deeper)
            for n, spec in builder.nodes.items()
            if spec.subgraph is not None and xray
        }
        unique = sorted(
            set(edges), key=lambda e: (e.source, e.target, e.conditional, e.label or "")
        )
        sources = {e.source for e in unique}
        ends = sorted({e.target for e in unique if e.target != END} - sources)
        unique += [Edge(n, END) for n in ends if n != START]
        used = {e.source for e in unique} | {e.target for e in unique}
        kept = [n for n in nodes if n in used or n in builder.nodes]
        metadata = {n: _node_metadata(builder, n, interrupts) for n in builder.nodes}
        return cls(name, kept, unique, subgraphs, {n: m for n, m in metadata.items() if m})

    def draw_mermaid(self) -> str:
        """The graph as a Mermaid flowchart (paste it into any Mermaid renderer)."""
        lines = ["---", "config:", "  flowchart:", "    curve: linear", "---", "graph TD;"]
        self._draw(lines, prefix="", indent="\t")
        lines += [
            "\tclassDef default fill:#f2f0ff,line-height:1.2",
            "\tclassDef first fill-opacity:0",
            "\tclassDef last fill:#bfb6fc",
        ]
        return "\n".join(lines) + "\n"

    def _draw(self, lines: list[str], prefix: str, indent: str) -> None:
        def ident(node: str) -> str:
            return _safe(f"{prefix}{node}")

        for node in self.nodes:
            if node == START:
                lines.append(f"{indent}{ident(node)}([<p>{START}</p>]):::first")
            elif node == END:
                lines.append(f"{indent}{ident(node)}([<p>{END}</p>]):::last")
            elif node in self.subgraphs:
                lines.append(f"{indent}subgraph {ident(node)}[{node}]")
                self.subgraphs[node]._draw(lines, f"{prefix}{node}:", indent + "\t")
                lines.append(f"{indent}end")
            else:
                lines.append(f"{indent}{ident(node)}({node}{_notes(self.metadata.get(node))})")
        for e in self.edges:
            if e.label:
                arrow = (
                    f"-. &nbsp;{e.label}&nbsp; .->"
                    if e.conditional
                    else f"-- &nbsp;{e.label}&nbsp; -->"
                )
            else:
                arrow = "-.->" if e.conditional else "-->"
            lines.append(f"{indent}{ident(e.source)} {arrow} {ident(e.target)};")


def _node_metadata(builder: StateGraph, node: str, interrupts: tuple[Any, Any]) -> dict[str, Any]:
    spec = builder.nodes[node]
    out = dict(spec.metadata or {})
    if spec.defer:
        out["defer"] = True
    before, after = (i == "*" or (i is not None and node in i) for i in interrupts)
    if before or after:
        out["__interrupt"] = ",".join(w for w, on in (("before", before), ("after", after)) if on)
    tools = getattr(getattr(spec.fn, "runnable", spec.fn), "tools_by_name", None)  # a ToolNode
    if isinstance(tools, dict) and tools:
        out["__tools"] = list(tools)
    return out


def _notes(metadata: dict[str, Any] | None) -> str:
    """A node's metadata under its name, as LangGraph's picture shows it."""
    lines = []
    for key, value in (metadata or {}).items():
        if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
            value = ", ".join(str(v) for v in value)
        if isinstance(value, str | int | float):
            lines.append(f"{key} = {value}")
    return "<hr/><small><em>" + "\n".join(lines) + "</em></small>" if lines else ""


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-]", "_", name)


def _branch_edges(builder: StateGraph, branch: BranchSpec) -> list[Edge]:
    if branch.path_map is not None:
        return [
            Edge(branch.source, target, True, None if str(key) == target else str(key))
            for key, target in branch.path_map.items()
        ]
    targets = _literal_targets(branch.path)
    if targets is None:
        targets = [*builder.nodes, END]
    return [Edge(branch.source, t, True) for t in targets if t in builder.nodes or t == END]


def _command_targets(fn: Any) -> tuple[str, ...]:
    """Where a node returning `Command[Literal["a", "b"]]` may go, read from its return
    annotation as LangGraph draws it (the node's `destinations` say it when given)."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:
        return ()
    from hitl_async.types import Command

    args = typing.get_args(hint) if typing.get_origin(hint) is Command else ()
    if args and typing.get_origin(args[0]) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(args[0]))
    return ()


def _literal_targets(path: Any) -> list[str] | None:
    """Targets named by a path function's `Literal[...]` return annotation, if it has one."""
    try:
        hint = typing.get_type_hints(path).get("return")
    except Exception:
        hint = inspect.signature(path).return_annotation if callable(path) else None
    if typing.get_origin(hint) is typing.Literal:
        return [str(a) for a in typing.get_args(hint)]
    return None
