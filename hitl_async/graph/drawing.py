"""A picture of a compiled graph: nodes, edges and conditional edges, drawn as a Mermaid flowchart
(`graph.get_graph().draw_mermaid()`) character for character as LangGraph 1.2.22 draws it (with
langchain-core's drawing rules), subgraphs (`get_graph(xray=...)`) included."""

from __future__ import annotations

import importlib
import inspect
import string
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from hitl_async.constants import END, START

if TYPE_CHECKING:
    from hitl_async.graph.state import BranchSpec, StateGraph

__all__ = ["START_ACTION", "DrawableGraph", "Edge", "Node"]

_SAFE = frozenset(string.ascii_letters + string.digits + "_-")
_MARKDOWN = tuple("*_`")
_LABEL_ESCAPES = {
    "[": "#91;",
    "]": "#93;",
    "(": "#40;",
    ")": "#41;",
    "{": "#123;",
    "}": "#125;",
    '"': "#quot;",
    "<": "#60;",
    ">": "#62;",
    "|": "#124;",
}


class Edge(NamedTuple):
    """An edge of the picture, as langchain-core's `Edge` (equal to one with the same fields):
    `data` is its label, `conditional` edges are drawn dotted."""

    source: str
    target: str
    data: str | None = None
    conditional: bool = False


START_ACTION = "__start__:input"
"""The `data` of a graph's START node: the step that reads the input (a runnable, in LangGraph's
picture); a node without data (END, an entrypoint's START) is drawn bare in `to_json()`."""


class Node(NamedTuple):
    """A node of the picture, as langchain-core's `Node`: `data` is the node's action (None for
    END), `metadata` what the picture shows under its name (None when nothing)."""

    id: str
    name: str
    data: Any
    metadata: dict[str, Any] | None


@dataclass
class DrawableGraph:
    """Nodes (by id: a subgraph's nodes drawn inside it are `subgraph:node`) and edges of a
    graph, in the order LangGraph's `get_graph()` has them, with LangGraph's reading and
    drawing methods (`draw_mermaid`, `to_json`, and through langchain-core `draw_mermaid_png`,
    `draw_ascii`...)."""

    name: str
    nodes: dict[str, Node]
    edges: list[Edge]

    @classmethod
    def of(
        cls,
        builder: StateGraph,
        name: str,
        interrupts: tuple[Any, Any] = (None, None),
        subgraphs: dict[str, DrawableGraph] | None = None,
    ) -> DrawableGraph:
        """The picture of `builder`, with the given pictures of subgraph nodes drawn inside
        their node (what `get_graph(xray=...)` passes), as LangGraph's. Edges come in
        LangGraph's order: sorted, then the edges of nodes that end the graph."""
        edges: list[Edge] = [Edge(s, t) for s, t in builder.edge_order if t != END]
        for starts, target in builder.waiting_edges:
            edges += [Edge(s, target) for s in starts if target != END]
        for branches in builder.branches.values():
            for branch in branches:
                edges += _branch_edges(builder, branch)
        for spec in builder.nodes.values():
            labels = spec.destination_labels
            targets = spec.destinations or _command_targets(spec.fn)
            edges += [
                Edge(spec.name, d, None if labels.get(d, d) == d else labels[d], True)
                for d in targets
                if d in builder.nodes or d == END
            ]
        implicit, last_step = _walk(builder, edges)
        ordered = sorted(
            set(edges + implicit), key=lambda e: (e.source, e.target, e.conditional, e.data or "")
        )
        unique: list[Edge] = []
        for e in ordered:  # one edge per (source, target): the first, as LangGraph adds them
            if not any(u.source == e.source and u.target == e.target for u in unique):
                unique.append(e)
        sources = {e.source for e in unique}
        ends = sorted({e.target for e in unique if e.target != END} - sources)
        unique += [Edge(n, END) for n in ends if n != START]
        if not ends and len(last_step) == 1 and not any(e.target == END for e in unique):
            unique.append(Edge(last_step[0], END, None, True))
        nodes = {START: Node(START, START, START_ACTION, None)}
        for n, spec in builder.nodes.items():
            meta = _node_metadata(builder, n, interrupts)
            nodes[n] = Node(n, n, spec.subgraph or spec.declared or spec.fn, meta or None)
        if any(e.target == END for e in unique):
            nodes[END] = Node(END, END, None, None)
        picture = cls(name, nodes, unique)
        for node, sub in (subgraphs or {}).items():
            picture._expand(node, sub)
        return picture

    # -- the graph, as langchain-core's `Graph` sees it ----------------------------------------

    def first_node(self, exclude: tuple[str, ...] = ()) -> str | None:
        """The one node no edge goes to (None if there are none or several)."""
        targets = {e.target for e in self.edges if e.source not in exclude}
        found = [n for n in self.nodes if n not in exclude and n not in targets]
        return found[0] if len(found) == 1 else None

    def last_node(self, exclude: tuple[str, ...] = ()) -> str | None:
        """The one node no edge leaves (None if there are none or several)."""
        sources = {e.source for e in self.edges if e.target not in exclude}
        found = [n for n in self.nodes if n not in exclude and n not in sources]
        return found[0] if len(found) == 1 else None

    def _remove(self, node: str) -> None:
        del self.nodes[node]
        self.edges = [e for e in self.edges if node not in (e.source, e.target)]

    def _trim(self) -> None:
        """Drop the first node if it has a single edge and another node would be first, and
        the last one likewise (a subgraph's START and END, as LangGraph draws it inside)."""
        first = self.first_node()
        if first and self.first_node((first,)) and [e.source for e in self.edges].count(first) == 1:
            self._remove(first)
        last = self.last_node()
        if last and self.last_node((last,)) and [e.target for e in self.edges].count(last) == 1:
            self._remove(last)

    def _expand(self, node: str, sub: DrawableGraph) -> None:
        """Draw `sub` in place of `node`: its nodes prefixed `node:`, the edges to `node` going
        to its first node and those from `node` leaving its last one, as LangGraph's xray."""
        if len(sub.nodes) <= 1 or node not in self.nodes:
            return
        if sub.first_node() is None or sub.last_node() is None:
            return
        sub._trim()
        first, last = sub.first_node(), sub.last_node()
        del self.nodes[node]
        self.nodes.update(
            {f"{node}:{k}": n._replace(id=f"{node}:{k}") for k, n in sub.nodes.items()}
        )
        self.edges += [
            e._replace(source=f"{node}:{e.source}", target=f"{node}:{e.target}") for e in sub.edges
        ]
        for i, e in enumerate(self.edges):
            if e.source == node and last is not None:
                e = e._replace(source=f"{node}:{last}")
            if e.target == node and first is not None:
                e = e._replace(target=f"{node}:{first}")
            self.edges[i] = e

    # -- Mermaid -------------------------------------------------------------------------------

    def draw_mermaid(
        self,
        *,
        with_styles: bool = True,
        curve_style: Any = "linear",
        node_colors: Any = None,
        wrap_label_n_words: int = 9,
        frontmatter_config: dict[str, Any] | None = None,
    ) -> str:
        """The graph as a Mermaid flowchart (paste it into any Mermaid renderer), with
        langchain-core's options: `with_styles=False` leaves out the front matter, the node
        lines and the class styles; `curve_style` (a `CurveStyle` or its value), `node_colors`
        (a `NodeStyles`), `wrap_label_n_words`, `frontmatter_config` (needs PyYAML)."""
        lines = ["graph TD;"]
        if with_styles:
            lines[:0] = ["---", *_frontmatter(frontmatter_config, curve_style), "---"]
        first, last = self.first_node(), self.last_node()

        def node_line(node: str) -> str:
            label = self.nodes[node].name.split(":")[-1]
            if label.startswith(_MARKDOWN) and label.endswith(_MARKDOWN):
                label = f"<p>{label}</p>"
            notes = _notes(self.nodes[node].metadata)
            if notes:
                label += "<hr/><small><em>" + "\n".join(notes) + "</em></small>"
            kind = ":::first" if node == first else ":::last" if node == last else ""
            shape = f"([{label}])" if kind else f"({label})"
            return f"\t{_safe(node)}{shape}{kind}"

        inside: dict[str, list[str]] = {}
        for node in self.nodes:
            if ":" in node:
                inside.setdefault(node.rsplit(":", 1)[0], []).append(node)
            elif with_styles:
                lines.append(node_line(node))
        groups: dict[str, list[Edge]] = {}
        for e in self.edges:
            pairs = zip(e.source.split(":"), e.target.split(":"), strict=False)
            groups.setdefault(":".join(s for s, t in pairs if s == t), []).append(e)
        seen: set[str] = set()

        def block(edges: list[Edge], prefix: str) -> None:
            self_loop = len(edges) == 1 and edges[0].source == edges[0].target
            if prefix and not self_loop:
                sub = prefix.rsplit(":", 1)[-1]
                if sub in seen:
                    raise ValueError(
                        f"Found duplicate subgraph '{sub}': two subgraph nodes have this name; "
                        "give subgraph nodes unique names to draw them with xray"
                    )
                seen.add(sub)
                lines.append(f"\tsubgraph {sub}")
                if with_styles:
                    lines.extend(node_line(n) for n in inside.get(prefix, ()))
            lines.extend(_edge_line(e, wrap_label_n_words) for e in edges)
            for nested, nested_edges in groups.items():
                if nested.startswith(prefix + ":") and ":" not in nested[len(prefix) + 1 :]:
                    block(nested_edges, nested)
            if prefix and not self_loop:
                lines.append("\tend")

        block(groups.get("", []), "")
        for prefix, edges in groups.items():
            if prefix and ":" not in prefix:
                block(edges, prefix)
                seen.add(prefix)
        for prefix, members in inside.items():  # subgraphs without edges of their own
            if with_styles and ":" not in prefix and prefix not in seen:
                lines += [f"\tsubgraph {prefix}", *(node_line(n) for n in members), "\tend"]
                seen.add(prefix)
        if with_styles:
            styles = {"default": _DEFAULT_STYLE, "first": _FIRST_STYLE, "last": _LAST_STYLE}
            for kind in styles:
                styles[kind] = getattr(node_colors, kind, None) or styles[kind]
            lines += [f"\tclassDef {kind} {style}" for kind, style in styles.items()]
        return "\n".join(lines) + "\n"

    # -- LangGraph's other readings, through langchain-core's Graph ----------------------------

    def to_json(self, *, with_schemas: bool = False) -> dict[str, list[dict[str, Any]]]:
        """Nodes and edges as LangGraph's `get_graph().to_json()` lists them (runnable ids
        named as LangGraph names its node classes, so readers of that JSON see the same)."""
        from hitl_async.graph._drawing_export import graph_json

        return graph_json(self)

    def to_langchain(self) -> Any:
        """This picture as a langchain-core `Graph` (needs langchain-core), for its other
        drawings: `draw_mermaid_png`, `draw_png`, `draw_ascii`..."""
        from hitl_async.graph._drawing_export import langchain_graph

        return langchain_graph(self)

    def draw_mermaid_png(self, **kwargs: Any) -> bytes:
        """A PNG of the Mermaid flowchart, drawn by langchain-core (its arguments)."""
        return bytes(self.to_langchain().draw_mermaid_png(**kwargs))

    def draw_png(self, output_file_path: str | None = None, fontname: str | None = None) -> Any:
        """A PNG drawn by Graphviz through langchain-core (needs pygraphviz)."""
        return self.to_langchain().draw_png(output_file_path, fontname)

    def draw_ascii(self) -> str:
        """The graph drawn in text, by langchain-core (needs grandalf)."""
        return str(self.to_langchain().draw_ascii())

    def print_ascii(self) -> None:
        """Print `draw_ascii()`."""
        print(self.draw_ascii())


_DEFAULT_STYLE = "fill:#f2f0ff,line-height:1.2"
_FIRST_STYLE = "fill-opacity:0"
_LAST_STYLE = "fill:#bfb6fc"


def _frontmatter(config: dict[str, Any] | None, curve_style: Any) -> list[str]:
    """The Mermaid front matter lines: `config.flowchart.curve` set to the curve style, the
    rest of `config` as given (as YAML, keys sorted, as langchain-core writes it)."""
    curve = str(getattr(curve_style, "value", curve_style))
    if not config:
        return ["config:", "  flowchart:", f"    curve: {curve}"]
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError as exc:  # pragma: no cover - PyYAML comes with langchain-core
        raise ImportError("draw_mermaid(frontmatter_config=...) needs PyYAML") from exc
    inner = dict(config.get("config", {}))
    full = {
        **config,
        "config": {**inner, "flowchart": {**inner.get("flowchart", {}), "curve": curve}},
    }
    return str(yaml.dump(full, default_flow_style=False)).splitlines()


def _edge_line(e: Edge, wrap: int = 9) -> str:
    if e.data is None:
        arrow = "-.->" if e.conditional else "-->"
    else:
        words = str(e.data).split()
        label = str(e.data)
        if len(words) > wrap:  # langchain-core wraps labels every `wrap` words
            label = "&nbsp<br>&nbsp".join(
                " ".join(words[i : i + wrap]) for i in range(0, len(words), wrap)
            )
        arrow = f"-. &nbsp;{label}&nbsp; .->" if e.conditional else f"-- &nbsp;{label}&nbsp; -->"
    return f"\t{_safe(e.source)} {arrow} {_safe(e.target)};"


def _walk(builder: StateGraph, edges: list[Edge]) -> tuple[list[Edge], list[str]]:
    """Step through the graph as LangGraph's picture does (every edge taken, up to 250 steps):
    the dotted edges to a deferred node from the step before it runs (no edge of that step
    leads to it), and the nodes of the last step (what a graph with no end is drawn ending on)."""
    joins = [(frozenset(starts), target) for starts, target in builder.waiting_edges]
    joined = {(s, t) for starts, t in joins for s in starts}
    direct: dict[str, set[str]] = {}
    for e in edges:
        if e.target != END and (e.source, e.target) not in joined:
            direct.setdefault(e.source, set()).add(e.target)
    deferred = {n for n, spec in builder.nodes.items() if spec.defer}
    seen: list[set[str]] = [set() for _ in joins]
    waiting: set[str] = set()
    implicit: list[Edge] = []
    tasks, last = {START}, {START}
    for _ in range(251):
        if not tasks:
            break
        last = tasks
        reached = set().union(*(direct.get(t, set()) for t in tasks))
        for i, (starts, target) in enumerate(joins):
            seen[i] |= tasks & starts
            if seen[i] >= starts:
                reached.add(target)
                seen[i] = set()
        waiting |= reached & deferred
        following = reached - deferred or waiting
        implicit += [Edge(s, t, None, True) for t in following - reached for s in sorted(tasks)]
        if following is waiting:
            waiting = set()
        tasks = set(following)
    return implicit, sorted(last)


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


def _notes(metadata: dict[str, Any] | None) -> list[str]:
    """A node's metadata lines under its name, as langchain-core's picture shows them."""
    lines = []
    for key, value in (metadata or {}).items():
        scalars = (str, int, float, bool)
        if isinstance(value, list | tuple | set) and all(isinstance(v, scalars) for v in value):
            items = [str(v) for v in value]
            value = ", ".join(sorted(items) if isinstance(value, set) else items)
        if isinstance(value, scalars):
            text = f"{key} = {value}".replace("#", "#35;")
            for char, entity in _LABEL_ESCAPES.items():
                text = text.replace(char, entity)
            lines.append(text)
    return lines


def _safe(name: str) -> str:
    """A Mermaid id: letters, digits, `_` and `-` kept, any other character as `\\` and its
    code point in hex (so `a:b` is `a\\3ab`), as langchain-core writes ids."""
    return "".join(c if c in _SAFE else "\\" + format(ord(c), "x") for c in name)


def _branch_edges(builder: StateGraph, branch: BranchSpec) -> list[Edge]:
    if branch.path_map is not None:
        return [
            Edge(branch.source, target, None if str(key) == target else str(key), True)
            for key, target in branch.path_map.items()
        ]
    targets = _literal_targets(branch.path)
    if targets is None:
        targets = [*builder.nodes, END]
    return [Edge(branch.source, t, None, True) for t in targets if t in builder.nodes or t == END]


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
