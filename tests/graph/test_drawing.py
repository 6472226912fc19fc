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


def test_xray_draws_a_subgraph_inside_its_node() -> None:
    text = build().compile().get_graph(xray=True).draw_mermaid()
    assert (
        "\tsubgraph approval[approval]\n"
        "\t\tapproval___start__([<p>__start__</p>]):::first\n"
        "\t\tapproval_check(check)\n"
        "\t\tapproval_sign(sign)\n"
        "\t\tapproval___end__([<p>__end__</p>]):::last\n"
        "\t\tapproval___start__ --> approval_check;\n"
        "\t\tapproval_check --> approval_sign;\n"
        "\t\tapproval_sign --> approval___end__;\n"
        "\tend\n"
    ) in text


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
