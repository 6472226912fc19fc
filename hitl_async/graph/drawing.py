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

    @classmethod
    def of(cls, builder: StateGraph, name: str) -> DrawableGraph:
        nodes = [START, *builder.nodes, END]
        edges: list[Edge] = [Edge(s, t) for s, t in builder.edge_order]
        for starts, target in builder.waiting_edges:
            edges += [Edge(s, target) for s in starts]
        for branches in builder.branches.values():
            for branch in branches:
                edges += _branch_edges(builder, branch)
        for spec in builder.nodes.values():
            edges += [Edge(spec.name, d, conditional=True) for d in spec.destinations]
        subgraphs = {
            n: DrawableGraph.of(spec.subgraph.builder, n)
            for n, spec in builder.nodes.items()
            if spec.subgraph is not None
        }
        unique = list(dict.fromkeys(edges))
        used = {e.source for e in unique} | {e.target for e in unique}
        return cls(name, [n for n in nodes if n in used or n in builder.nodes], unique, subgraphs)

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
                lines.append(f"{indent}{ident(node)}({node})")
        for e in self.edges:
            arrow = "-.->" if e.conditional else "-->"
            label = f"|{e.label}|" if e.label else ""
            lines.append(f"{indent}{ident(e.source)} {arrow}{label} {ident(e.target)};")


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


def _literal_targets(path: Any) -> list[str] | None:
    """Targets named by a path function's `Literal[...]` return annotation, if it has one."""
    try:
        hint = typing.get_type_hints(path).get("return")
    except Exception:
        hint = inspect.signature(path).return_annotation if callable(path) else None
    if typing.get_origin(hint) is typing.Literal:
        return [str(a) for a in typing.get_args(hint)]
    return None
