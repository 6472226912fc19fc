"""`get_graph().draw_mermaid()`: nodes, edges, conditional edges and subgraphs."""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict

from hitl_async import END, START, Command, StateGraph


class S(TypedDict, total=False):
    x: str


def route(state: S) -> Literal["approval", "reject"]:
    return "approval"


def build() -> StateGraph:
    sub = StateGraph(S)
    sub.add_node("check", lambda s: {})
    sub.add_node("sign", lambda s: {})
    sub.add_edge(START, "check")
    sub.add_edge("check", "sign")
    sub.add_edge("sign", END)
    g = StateGraph(S)
    g.add_node("intake", lambda s: {})
    g.add_node("approval", sub.compile())
    g.add_node("reject", lambda s: {})
    g.add_edge(START, "intake")
    g.add_conditional_edges("intake", route)
    g.add_conditional_edges("approval", lambda s: "ok", {"ok": END, "again": "intake"})
    g.add_edge("reject", END)
    return g


def test_mermaid_of_a_graph_with_a_conditional_edge_and_a_subgraph() -> None:
    """Character for character what LangGraph 1.2.22 draws for the same graph: edges sorted,
    then the edges of the nodes that end the graph; labelled branches as `-. label .->`."""
    assert build().compile().get_graph().draw_mermaid() == (
        "---\n"
        "config:\n"
        "  flowchart:\n"
        "    curve: linear\n"
        "---\n"
        "graph TD;\n"
        "\t__start__([<p>__start__</p>]):::first\n"
        "\tintake(intake)\n"
        "\tapproval(approval)\n"
        "\treject(reject)\n"
        "\t__end__([<p>__end__</p>]):::last\n"
        "\t__start__ --> intake;\n"
        "\tapproval -. &nbsp;ok&nbsp; .-> __end__;\n"
        "\tapproval -. &nbsp;again&nbsp; .-> intake;\n"
        "\tintake -.-> approval;\n"
        "\tintake -.-> reject;\n"
        "\treject --> __end__;\n"
        "\tclassDef default fill:#f2f0ff,line-height:1.2\n"
        "\tclassDef first fill-opacity:0\n"
        "\tclassDef last fill:#bfb6fc\n"
    )


FRAME = "---\nconfig:\n  flowchart:\n    curve: linear\n---\ngraph TD;\n"
STYLES = (
    "\tclassDef default fill:#f2f0ff,line-height:1.2\n"
    "\tclassDef first fill-opacity:0\n"
    "\tclassDef last fill:#bfb6fc\n"
)


def drawn(body: str) -> str:
    """A whole Mermaid text around `body` (its nodes and edges)."""
    return FRAME + body + STYLES


def test_xray_draws_a_subgraph_inside_its_node() -> None:
    """LangGraph 1.2.22's text for the same graph: the subgraph's own START and END are left
    out, edges to its node reach its first node and edges from it leave its last one, node ids
    are prefixed `approval:` (written `approval\\3a` in Mermaid) and drawn in a `subgraph`
    block after the graph's own edges."""
    assert build().compile().get_graph(xray=True).draw_mermaid() == drawn(
        "\t__start__([<p>__start__</p>]):::first\n"
        "\tintake(intake)\n"
        "\treject(reject)\n"
        "\t__end__([<p>__end__</p>]):::last\n"
        "\t__start__ --> intake;\n"
        "\tapproval\\3asign -. &nbsp;ok&nbsp; .-> __end__;\n"
        "\tapproval\\3asign -. &nbsp;again&nbsp; .-> intake;\n"
        "\tintake -.-> approval\\3acheck;\n"
        "\tintake -.-> reject;\n"
        "\treject --> __end__;\n"
        "\tsubgraph approval\n"
        "\tapproval\\3acheck(check)\n"
        "\tapproval\\3asign(sign)\n"
        "\tapproval\\3acheck --> approval\\3asign;\n"
        "\tend\n"
    )


def two_levels() -> StateGraph:
    """top: child (m1 -> deep (i1 -> i2 or END)) -> after."""
    inner = StateGraph(S)
    inner.add_node("i1", lambda s: {})
    inner.add_node("i2", lambda s: {})
    inner.add_edge(START, "i1")
    inner.add_conditional_edges("i1", lambda s: "i2", {"i2": "i2", "stop": END})
    mid = StateGraph(S)
    mid.add_node("m1", lambda s: {})
    mid.add_node("deep", inner.compile())
    mid.add_edge(START, "m1")
    mid.add_edge("m1", "deep")
    mid.add_edge("deep", END)
    top = StateGraph(S)
    top.add_node("child", mid.compile())
    top.add_node("after", lambda s: {})
    top.add_edge(START, "child")
    top.add_edge("child", "after")
    top.add_edge("after", END)
    return top


def test_xray_nests_subgraphs_and_keeps_an_end_reached_twice() -> None:
    """As LangGraph: `xray=True` draws every level, nested blocks; a subgraph's END that two
    edges reach is kept (drawn as a plain node), and the parent's edge leaves from it."""
    assert two_levels().compile().get_graph(xray=True).draw_mermaid() == drawn(
        "\t__start__([<p>__start__</p>]):::first\n"
        "\tafter(after)\n"
        "\t__end__([<p>__end__</p>]):::last\n"
        "\t__start__ --> child\\3am1;\n"
        "\tchild\\3adeep\\3a__end__ --> after;\n"
        "\tafter --> __end__;\n"
        "\tsubgraph child\n"
        "\tchild\\3am1(m1)\n"
        "\tchild\\3am1 --> child\\3adeep\\3ai1;\n"
        "\tsubgraph deep\n"
        "\tchild\\3adeep\\3ai1(i1)\n"
        "\tchild\\3adeep\\3ai2(i2)\n"
        "\tchild\\3adeep\\3a__end__(<p>__end__</p>)\n"
        "\tchild\\3adeep\\3ai1 -. &nbsp;stop&nbsp; .-> child\\3adeep\\3a__end__;\n"
        "\tchild\\3adeep\\3ai1 -.-> child\\3adeep\\3ai2;\n"
        "\tchild\\3adeep\\3ai2 --> child\\3adeep\\3a__end__;\n"
        "\tend\n"
        "\tend\n"
    )


def test_xray_of_one_level_draws_deeper_subgraphs_as_nodes() -> None:
    assert two_levels().compile().get_graph(xray=1).draw_mermaid() == drawn(
        "\t__start__([<p>__start__</p>]):::first\n"
        "\tafter(after)\n"
        "\t__end__([<p>__end__</p>]):::last\n"
        "\t__start__ --> child\\3am1;\n"
        "\tchild\\3adeep --> after;\n"
        "\tafter --> __end__;\n"
        "\tsubgraph child\n"
        "\tchild\\3am1(m1)\n"
        "\tchild\\3adeep(deep)\n"
        "\tchild\\3am1 --> child\\3adeep;\n"
        "\tend\n"
    )


def test_destinations_given_as_a_dict_label_their_edges() -> None:
    """LangGraph: `add_node(..., destinations={"b": "go b", END: "finish"})` draws each label
    on its dotted edge; a label equal to its node's name is left out. Inside an xray'd
    subgraph too, and on a subgraph node's own destinations."""
    g = StateGraph(S)
    g.add_node("a", lambda s: {}, destinations={"b": "go b", END: "finish"})
    g.add_node("b", lambda s: {})
    g.add_edge(START, "a")
    assert g.compile().get_graph().draw_mermaid() == drawn(
        "\t__start__([<p>__start__</p>]):::first\n"
        "\ta(a)\n"
        "\tb(b)\n"
        "\t__end__([<p>__end__</p>]):::last\n"
        "\t__start__ --> a;\n"
        "\ta -. &nbsp;finish&nbsp; .-> __end__;\n"
        "\ta -. &nbsp;go b&nbsp; .-> b;\n"
        "\tb --> __end__;\n"
    )
    g = StateGraph(S)
    g.add_node("a", lambda s: {}, destinations={"b": "b", "c": "to c"})
    g.add_node("b", lambda s: {})
    g.add_node("c", lambda s: {})
    g.add_edge(START, "a")
    text = g.compile().get_graph().draw_mermaid()
    assert "\ta -.-> b;\n\ta -. &nbsp;to c&nbsp; .-> c;\n" in text
    sub = StateGraph(S)
    sub.add_node("s1", lambda s: {}, destinations={"s2": "next"})
    sub.add_node("s2", lambda s: {})
    sub.add_edge(START, "s1")
    top = StateGraph(S)
    top.add_node("sub", sub.compile(), destinations={"z": "done"})
    top.add_node("z", lambda s: {})
    top.add_edge(START, "sub")
    assert top.compile().get_graph(xray=True).draw_mermaid() == drawn(
        "\t__start__([<p>__start__</p>]):::first\n"
        "\tz(z)\n"
        "\t__end__([<p>__end__</p>]):::last\n"
        "\t__start__ --> sub\\3as1;\n"
        "\tsub\\3as2 -. &nbsp;done&nbsp; .-> z;\n"
        "\tz --> __end__;\n"
        "\tsubgraph sub\n"
        "\tsub\\3as1(s1)\n"
        "\tsub\\3as2(s2)\n"
        "\tsub\\3as1 -. &nbsp;next&nbsp; .-> sub\\3as2;\n"
        "\tend\n"
    )


def test_destinations_and_joins_are_drawn() -> None:
    g = StateGraph(S)
    g.add_node("a", lambda s: {}, destinations=("b", END))
    g.add_node("b", lambda s: {})
    g.add_node("c", lambda s: {})
    g.add_edge(START, "a")
    g.add_edge(START, "c")
    g.add_edge(["b", "c"], END)
    picture = g.compile().get_graph()
    assert ("a", "b", True) in {(e.source, e.target, e.conditional) for e in picture.edges}
    text = picture.draw_mermaid()
    assert "\ta -.-> b;\n" in text and "\ta -.-> __end__;\n" in text
    assert "\tb --> __end__;\n" in text and "\tc --> __end__;\n" in text


def test_path_without_map_or_literal_may_go_anywhere() -> None:
    g = StateGraph(S)
    g.add_node("a", lambda s: {})
    g.add_node("b", lambda s: {})
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: "b")
    edges = {(e.source, e.target) for e in g.compile().get_graph().edges if e.conditional}
    assert edges == {("a", "a"), ("a", "b"), ("a", END)}


def test_subgraphs_are_one_node_unless_xray() -> None:
    """As LangGraph's `get_graph()`: `xray=False` by default draws a subgraph as its node."""
    text = build().compile().get_graph().draw_mermaid()
    assert "subgraph" not in text and "\tapproval(approval)\n" in text


def test_a_command_return_annotation_draws_its_targets() -> None:
    def decide(state: S) -> Command[Literal["b", "__end__"]]:
        return Command(goto="b")

    g = StateGraph(S)
    g.add_node("a", decide)
    g.add_node("b", lambda s: {})
    g.add_edge(START, "a")
    text = g.compile().get_graph().draw_mermaid()
    assert "\ta -.-> b;\n" in text and "\ta -.-> __end__;\n" in text
