"""Parity with LangGraph: what LangGraph's `test_pregel.py` (its sync API tests) checks that a
user sees — the picture of a graph (`get_graph()`: Mermaid with its options, `to_json()`,
edges as langchain-core's) and edits of a paused thread — restated with our own graphs; the
cases that touch a thread run on every driver."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, Any

import langchain_core.runnables as runnables
import langchain_core.runnables.graph as graph_module
import pytest
from typing_extensions import TypedDict

from hitl_async import (
    END,
    START,
    Command,
    InvalidUpdateError,
    NoParentGraphError,
    StateGraph,
    entrypoint,
    get_config,
    interrupt,
    task,
)
from hitl_async._internal._constants import CONFIG_KEY_NODE_FINISHED
from hitl_async.errors import ParentCommand
from hitl_async.managed import RemainingSteps

pytestmark = pytest.mark.anyio

CALLABLE = ["langgraph", "_internal", "_runnable", "RunnableCallable"]


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


def cfg() -> dict[str, Any]:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def add(g: StateGraph, *names: str, **kw: Any) -> None:
    for name in names:
        g.add_node(name, lambda s, n=name: {"log": [n]}, **kw)


# test_pregel.py::test_conditional_state_graph_with_list_edge_inputs,
# ::test_get_graph_loop, ::test_in_one_fan_out_state_graph_defer_node
def test_mermaid_without_styles_ends_joins_loops_and_deferred_nodes_as_langgraph() -> None:
    """`with_styles=False` is the edges only; a join into END is drawn as each source's own
    edge to END; a graph that never ends gets a dotted edge to END from its last step's node;
    a deferred node gets a dotted edge from the node that runs in the step before it."""
    joined = StateGraph(Log)
    add(joined, "fetch", "parse")
    joined.add_edge(START, "fetch")
    joined.add_edge(START, "parse")
    joined.add_edge(["fetch", "parse"], END)
    assert joined.compile().get_graph().draw_mermaid(with_styles=False) == (
        "graph TD;\n\t__start__ --> fetch;\n\t__start__ --> parse;\n"
        "\tfetch --> __end__;\n\tparse --> __end__;\n"
    )

    loop = StateGraph(Log)
    add(loop, "ask", "answer")
    loop.add_edge(START, "ask")
    loop.add_edge("ask", "answer")
    loop.add_edge("answer", "ask")
    assert loop.compile().get_graph().draw_mermaid(with_styles=False) == (
        "graph TD;\n\t__start__ --> ask;\n\tanswer --> ask;\n\task --> answer;\n"
        "\tanswer -.-> __end__;\n"
    )

    deferred = StateGraph(Log)
    add(deferred, "split", "left", "right", "check")
    add(deferred, "merge", defer=True)
    deferred.add_edge(START, "split")
    for a, b in [("split", "left"), ("split", "right"), ("left", "check")]:
        deferred.add_edge(a, b)
    deferred.add_edge("left", "merge")
    deferred.add_edge("right", "merge")
    assert deferred.compile().get_graph().draw_mermaid(with_styles=False) == (
        "graph TD;\n\t__start__ --> split;\n\tcheck -.-> merge;\n\tleft --> check;\n"
        "\tleft --> merge;\n\tright --> merge;\n\tsplit --> left;\n\tsplit --> right;\n"
        "\tmerge --> __end__;\n"
    )


def routed() -> Any:
    """START -> router, which goes (by Command) to a subgraph node or ends; labelled."""
    sub = StateGraph(Log)
    add(sub, "inner")
    sub.add_edge(START, "inner")
    g = StateGraph(Log)
    g.add_node(
        "router",
        lambda s: Command(goto="sub"),
        destinations={"sub": "go sub", END: "stop"},
        metadata={"owner": "ops"},
    )
    g.add_node("sub", sub.compile())
    g.add_edge(START, "router")
    return g.compile(interrupt_before=["sub"])


# test_pregel.py::test_conditional_entrypoint_graph_state, ::test_nested_graph_xray,
# ::test_get_graph_self_loop
def test_to_json_lists_nodes_and_edges_as_langgraph() -> None:
    """Runnable nodes named by id with LangGraph's class ids (a function, a compiled graph),
    END bare, metadata (own, `__interrupt`) when there is some; edges with their label as
    `data` and `conditional` only when true; with xray the subgraph's nodes are prefixed."""
    app = routed()
    assert app.get_graph().to_json() == {
        "nodes": [
            {"id": "__start__", "type": "runnable", "data": {"id": CALLABLE, "name": "__start__"}},
            {
                "id": "router",
                "type": "runnable",
                "data": {"id": CALLABLE, "name": "router"},
                "metadata": {"owner": "ops"},
            },
            {
                "id": "sub",
                "type": "runnable",
                "data": {
                    "id": ["langgraph", "graph", "state", "CompiledStateGraph"],
                    "name": "sub",
                },
                "metadata": {"__interrupt": "before"},
            },
            {"id": "__end__"},
        ],
        "edges": [
            {"source": "__start__", "target": "router"},
            {"source": "router", "target": "__end__", "data": "stop", "conditional": True},
            {"source": "router", "target": "sub", "data": "go sub", "conditional": True},
            {"source": "sub", "target": "__end__"},
        ],
    }
    xray = app.get_graph(xray=True).to_json()
    assert [n["id"] for n in xray["nodes"]] == ["__start__", "router", "__end__", "sub:inner"]
    assert xray["nodes"][3]["data"] == {"id": CALLABLE, "name": "sub:inner"}
    assert {"source": "router", "target": "sub:inner", "data": "go sub", "conditional": True} in (
        xray["edges"]
    )


# test_pregel.py::test_node_destinations
def test_edges_compare_equal_to_langchain_core_edges() -> None:
    """`get_graph().edges` are (source, target, data, conditional) tuples, equal to
    langchain-core's `Edge`s as LangGraph's tests compare them."""
    edge = graph_module.Edge
    assert routed().get_graph().edges == [
        edge("__start__", "router"),
        edge("router", "__end__", "stop", True),
        edge("router", "sub", "go sub", True),
        edge("sub", "__end__"),
    ]


def test_mermaid_options_and_langchain_core_graph() -> None:
    """langchain-core's `draw_mermaid` options (curve style, label wrapping, node colours)
    draw as there; `to_langchain()` is a langchain-core `Graph` drawing the same picture."""
    picture = routed().get_graph()
    text = picture.draw_mermaid(
        curve_style=graph_module.CurveStyle.BASIS,
        wrap_label_n_words=1,
        node_colors=graph_module.NodeStyles(last="fill:#000"),
    )
    assert text.startswith("---\nconfig:\n  flowchart:\n    curve: basis\n---\ngraph TD;\n")
    assert "\trouter(router<hr/><small><em>owner = ops</em></small>)\n" in text
    assert "\trouter -. &nbsp;go&nbsp<br>&nbspsub&nbsp; .-> sub;\n" in text
    assert text.endswith("\tclassDef last fill:#000\n")
    theme = {"config": {"theme": "neutral"}}
    lc = picture.to_langchain()
    assert isinstance(lc, graph_module.Graph)
    assert lc.draw_mermaid(frontmatter_config=theme) == picture.draw_mermaid(
        frontmatter_config=theme
    )
    assert lc.draw_mermaid(with_styles=False) == picture.draw_mermaid(with_styles=False)


# test_pregel.py::test_in_one_fan_out_state_graph_defer_node
async def test_update_while_paused_before_a_deferred_node_keeps_it_due(saver: Any) -> None:
    """Paused before a deferred node, an update (as the last writer, or as a node whose edge
    leads elsewhere) keeps the deferred node due: it runs next, beside any routed node."""
    g = StateGraph(Log)
    add(g, "a", "b", "c", "z")
    add(g, "qa", defer=True)
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_edge("a", "c")
    g.add_edge("a", "qa")
    g.add_edge("b", "qa")
    g.add_edge("z", "c")
    app = g.compile(checkpointer=saver, interrupt_before=["qa"])

    config = cfg()
    await app.ainvoke({"log": []}, config)
    assert (await app.aget_state(config)).next == ("qa",)
    await app.aupdate_state(config, {"log": ["edit"]})
    assert (await app.aget_state(config)).next == ("qa",)
    assert (await app.ainvoke(None, config))["log"] == ["a", "b", "c", "edit", "qa"]

    config = cfg()
    await app.ainvoke({"log": []}, config)
    await app.aupdate_state(config, {"log": ["edit"]}, as_node="z")
    assert (await app.aget_state(config)).next == ("c", "qa")
    assert (await app.ainvoke(None, config))["log"] == ["a", "b", "c", "edit", "c", "qa"]
    assert (await app.aget_state(config)).next == ()


# test_pregel.py::test_doubly_nested_graph_interrupts (its CONFIG_KEY_NODE_FINISHED part)
async def test_node_finished_callback_hears_each_completed_node_and_task(saver: Any) -> None:
    """A callable under `configurable["__pregel_node_finished"]` is called with the name of
    each node that completes, a subgraph's own nodes included, and of each `@task` call; a
    node that pauses is not reported until it completes on resume."""
    inner = StateGraph(Log)
    add(inner, "prep")
    inner.add_node("confirm", lambda s: {"log": [interrupt("ok?")]})
    inner.add_edge(START, "prep")
    inner.add_edge("prep", "confirm")
    outer = StateGraph(Log)
    add(outer, "intake")
    outer.add_node("review", inner.compile())
    outer.add_edge(START, "intake")
    outer.add_edge("intake", "review")
    app = outer.compile(checkpointer=saver)

    heard: list[str] = []
    config = cfg()
    config["configurable"][CONFIG_KEY_NODE_FINISHED] = heard.append
    await app.ainvoke({"log": []}, config)
    assert heard == ["intake", "prep"]
    heard.clear()
    final = await app.ainvoke(Command(resume="yes"), config)
    assert final["log"] == ["intake", "intake", "prep", "yes"]
    assert heard == ["confirm", "review"]

    @task
    def bump(n: int) -> int:
        return n + 1

    @entrypoint(checkpointer=saver)
    async def flow(n: int) -> int:
        return await bump(n) + await bump(n + 1)

    heard.clear()
    config = cfg()
    config["configurable"][CONFIG_KEY_NODE_FINISHED] = heard.append
    assert await flow.ainvoke(1, config) == 5
    assert heard == ["bump", "bump", "flow"]


# test_pregel.py::test_falsy_return_from_task
async def test_functional_tasks_stream_shows_task_calls_and_the_entrypoint_as_langgraph(
    saver: Any,
) -> None:
    """In `tasks` (and `debug`) mode an entrypoint's task takes its input as given, triggered by
    `__start__`, and its result is `{"__end__": value}`; each `@task` call is a task of its own
    (`((args), {kwargs})` pushed, result `{"__return__": value}`, a falsy one too); a
    checkpoint's values are the entrypoint's return value; on resume a kept call is reported
    as starting only."""

    @task
    def is_blank(text: str, *, strict: bool) -> bool:
        return not text.strip() if strict else False

    @entrypoint(checkpointer=saver)
    async def review(doc: dict[str, str]) -> dict[str, Any]:
        blank = await is_blank(doc["text"], strict=False)
        verdict = interrupt("approve?")
        return {"blank": blank, "verdict": verdict}

    config = cfg()
    first = [c async for c in review.astream({"text": "hi"}, config, stream_mode="tasks")]
    assert [(c["name"], c.get("input"), c.get("triggers"), c.get("result")) for c in first] == [
        ("review", {"text": "hi"}, ("__start__",), None),
        ("is_blank", (("hi",), {"strict": False}), ("__pregel_push",), None),
        ("is_blank", None, None, {"__return__": False}),
        ("review", None, None, {}),
    ]
    assert first[3]["interrupts"][0]["value"] == "approve?"
    assert first[1]["id"] == first[2]["id"] != first[0]["id"] == first[3]["id"]

    debug = [c async for c in review.astream(Command(resume="yes"), config, stream_mode="debug")]
    kinds = [(c["type"], c["payload"].get("name")) for c in debug]
    assert kinds == [
        ("checkpoint", None),
        ("task", "review"),
        ("task", "is_blank"),
        ("task_result", "review"),
        ("checkpoint", None),
    ]
    assert debug[0]["payload"]["values"] is None
    assert debug[3]["payload"]["result"] == {"__end__": {"blank": False, "verdict": "yes"}}
    assert debug[4]["payload"]["values"] == {"blank": False, "verdict": "yes"}


# test_pregel.py::test_nested_graph (its `app | RunnablePassthrough()` part)
async def test_a_graph_composes_into_a_langchain_chain() -> None:
    """`graph | runnable` and `function | graph` are LangChain `RunnableSequence`s: invoking
    runs the graph as one step; streaming streams the graph's own chunks through the chain."""

    class Count(TypedDict):
        n: int

    g = StateGraph(Count)
    g.add_node("inc", lambda s: {"n": s["n"] + 1})
    g.add_node("triple", lambda s: {"n": s["n"] * 3})
    g.add_edge(START, "inc")
    g.add_edge("inc", "triple")
    app = g.compile()

    passthrough = app | runnables.RunnablePassthrough()
    assert isinstance(passthrough, runnables.RunnableSequence)
    assert passthrough.invoke({"n": 1}) == {"n": 6}
    assert [c async for c in passthrough.astream({"n": 1})] == [
        {"inc": {"n": 2}},
        {"triple": {"n": 6}},
    ]
    assert await (app | runnables.RunnableLambda(lambda s: s["n"])).ainvoke({"n": 0}) == 3
    wrapped = (lambda start: {"n": start}) | app
    assert wrapped.invoke(4) == {"n": 15}


# test_pregel.py::test_in_one_fan_out_state_graph_defer_node[True]
async def test_a_join_targets_triggers_list_its_join_channels(saver: Any) -> None:
    """A node that edges wait on several nodes for lists, in the `tasks` stream and in its
    `langgraph_triggers` metadata, `branch:to:<node>` and each `join:<a>+<b>:<node>`, sorted
    (deferred or not); other nodes list `branch:to:<node>` alone."""
    seen: dict[str, Any] = {}

    def mark(name: str) -> Any:
        def node(state: Log) -> Log:
            seen[name] = get_config()["metadata"]["langgraph_triggers"]
            return {"log": [name]}

        return node

    for defer in (False, True):
        g = StateGraph(Log)
        for name in ("left", "right"):
            g.add_node(name, mark(name))
        g.add_node("merge", mark("merge"), defer=defer)
        g.add_edge(START, "left")
        g.add_edge(START, "right")
        g.add_edge(["right", "left"], "merge")
        g.add_edge(["left", "right"], "merge")
        app = g.compile(checkpointer=saver)
        chunks = [c async for c in app.astream({"log": []}, cfg(), stream_mode="tasks")]
        started = {c["name"]: c["triggers"] for c in chunks if "triggers" in c}
        both = ("branch:to:merge", "join:left+right:merge", "join:right+left:merge")
        assert started == {
            "left": ("branch:to:left",),
            "right": ("branch:to:right",),
            "merge": both,
        }
        assert seen == started


# test_pregel.py::test_timeout_with_parent_command
async def test_a_handoff_to_the_parent_from_a_graph_run_alone_raises_parent_command(
    saver: Any,
) -> None:
    """A graph run on its own whose node hands off with `Command(graph=Command.PARENT)` raises
    `ParentCommand` carrying the command (also an `InvalidUpdateError` here, saying so); a
    sibling's writes are kept, the handing-off task is still next, with no error recorded."""
    g = StateGraph(Log)
    add(g, "draft")
    g.add_node(
        "escalate",
        lambda s: Command(graph=Command.PARENT, goto="supervisor", update={"log": ["help"]}),
    )
    g.add_edge(START, "draft")
    g.add_edge(START, "escalate")
    app = g.compile(checkpointer=saver)
    config = cfg()
    with pytest.raises(ParentCommand) as caught:
        await app.ainvoke({"log": []}, config)
    assert isinstance(caught.value, NoParentGraphError)
    assert isinstance(caught.value, InvalidUpdateError)
    assert caught.value.args[0].goto == "supervisor"
    assert caught.value.args[0].update == {"log": ["help"]}
    assert "no parent graph" in str(caught.value)
    state = await app.aget_state(config)
    assert state.values == {"log": ["draft"]}
    assert state.next == ("escalate",)
    assert [(t.name, t.error) for t in state.tasks] == [("draft", None), ("escalate", None)]


class Base(TypedDict):
    question: str


class Full(Base, total=False):
    notes: Annotated[list[str], operator.add]
    budget: RemainingSteps


class Reply(TypedDict):
    answer: str


class Scratch(TypedDict):
    draft: str


# test_pregel.py::test_state_graph_w_config_inherited_state_keys
def test_builder_channels_are_every_schemas_state_keys() -> None:
    """`StateGraph.channels` has a key per state key of the state, input, output and node
    input schemas (inherited TypedDict keys included), none for managed values; each tells
    its reducer."""

    def write(state: Scratch) -> dict[str, Any]:
        return {}

    g = StateGraph(Full, output_schema=Reply)
    g.add_node("write", write)
    g.add_edge(START, "write")
    assert set(g.channels) == {"question", "notes", "answer", "draft"}
    assert g.channels["notes"].reducer is operator.add
    assert g.channels["question"].reducer is None


# test_pregel.py::test_pregel_node_copy
async def test_compiled_graph_and_node_copies(saver: Any) -> None:
    """`graph.copy()` is a new compiled graph on the same checkpointer (`copy({"name": ...})`
    changes that attribute only in the copy); `graph.nodes[name].copy({})` copies a node."""
    g = StateGraph(Log)
    add(g, "only")
    g.add_edge(START, "only")
    app = g.compile(checkpointer=saver, name="first")
    twin = app.copy()
    assert twin is not app and twin.checkpointer is saver and twin.name == "first"
    config = cfg()
    assert await twin.ainvoke({"log": []}, config) == {"log": ["only"]}
    assert (await app.aget_state(config)).values == {"log": ["only"]}
    assert app.copy({"name": "second"}).name == "second" and app.name == "first"
    node = app.nodes["only"]
    assert node.copy({}) == node and node.copy({}) is not node


# test_pregel.py graph pictures, for an @entrypoint (LangGraph draws its Pregel)
def test_an_entrypoint_is_drawn_as_langgraph_draws_it() -> None:
    """An entrypoint's picture: START (bare in `to_json()`) into the function's node, with a
    dotted edge from it to END."""

    @entrypoint()
    def shout(text: str) -> str:
        return text.upper()

    picture = shout.get_graph()
    assert picture.draw_mermaid(with_styles=False) == (
        "graph TD;\n\t__start__ --> shout;\n\tshout -.-> __end__;\n"
    )
    assert picture.to_json() == {
        "nodes": [
            {"id": "shout", "type": "runnable", "data": {"id": CALLABLE, "name": "shout"}},
            {"id": "__start__"},
            {"id": "__end__"},
        ],
        "edges": [
            {"source": "__start__", "target": "shout"},
            {"source": "shout", "target": "__end__", "conditional": True},
        ],
    }
