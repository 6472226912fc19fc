"""Property-based tests: random layered graphs (fan-out, joins, reducers, conditional edges, a
`Send` fan-out, a bounded loop, interrupts at random nodes) give the same final state whether
they run straight through or pause and resume at every interrupt, and on every driver the same
final state, pauses and history shape as on the in-memory saver."""

from __future__ import annotations

import itertools
import operator
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typing_extensions import TypedDict

from hitl_async import END, START, Command, InMemorySaver, Send, StateGraph, connect, interrupt

WORKER = "w"
MAX_PAUSES = 60
RUN_CONFIG = {"recursion_limit": 200}
# Fixed examples (derandomized, no example database) so CI runs are reproducible; raise
# HITL_PROPERTY_SCALE (e.g. 20) for a deeper local search.
SCALE = int(os.environ.get("HITL_PROPERTY_SCALE", "1"))
MEMORY_EXAMPLES = 100 * SCALE
DRIVER_EXAMPLES = 20 * SCALE


from apps.services import POSTGRES_URL, REDIS_URL, require_package, require_service  # noqa: E402


class S(TypedDict):
    log: Annotated[list[str], operator.add]
    total: Annotated[int, operator.add]
    loops: Annotated[int, operator.add]


# -- the shape of a random graph ---------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    name: str
    asks: int  # how many times it calls interrupt() (0, 1 or 2)
    weight: int  # what it adds to `total`
    is_async: bool
    yields: int  # an async node yields to the loop this often first (finish order varies)


@dataclass(frozen=True)
class GraphSpec:
    """Layer i's nodes run in step i + 1 (until the loop goes back); see `graphs()`."""

    layers: tuple[tuple[str, ...], ...]
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]  # plain edges, START -> layer 0 included
    joins: tuple[tuple[tuple[str, ...], str], ...]  # add_edge([a, b, ...], c)
    routers: tuple[tuple[str, tuple[str, ...]], ...]  # conditional edge: source, its choices
    senders: tuple[tuple[str, int], ...]  # conditional edge: source, max Sends to the worker
    worker: Node | None
    loop: tuple[str, str, int] | None  # source (last layer), target (layer 0), bound


def answer(question: str) -> str:
    """The answer a human gives to `question`, straight through or on resume."""
    return f"a:{question}"


def _key(state: S) -> int:
    return state["total"] * 7 + len(state["log"])


@st.composite
def graphs(draw: st.DrawFn) -> GraphSpec:
    """A layered DAG of 3-8 nodes: START -> every node of layer 0; each node of layer i + 1 is
    reached from layer i by plain edges, a join of 2+ nodes, or a conditional edge choosing
    among next-layer nodes from the state; optionally a conditional edge `Send`s items to a
    worker node, and a conditional edge with a counter loops from the last layer to layer 0."""
    count = draw(st.integers(3, 8))
    layers: list[tuple[str, ...]] = []
    made = 0
    while made < count:
        size = draw(st.integers(1, min(3, count - made)))
        layers.append(tuple(f"n{made + k}" for k in range(size)))
        made += size

    def node(name: str) -> Node:
        return Node(
            name,
            asks=draw(st.sampled_from([0, 0, 1, 1, 2])),
            weight=draw(st.integers(0, 5)),
            is_async=draw(st.booleans()),
            yields=draw(st.integers(0, 3)),
        )

    nodes = tuple(node(name) for layer in layers for name in layer)
    edges: list[tuple[str, str]] = [(START, name) for name in layers[0]]
    joins: list[tuple[tuple[str, ...], str]] = []
    choices: dict[str, list[str]] = {}
    for before, after in itertools.pairwise(layers):
        kinds = ["edge", "cond"] + (["join"] if len(before) > 1 else [])
        for target in after:
            kind = draw(st.sampled_from(kinds))
            if kind == "edge":
                preds = draw(st.lists(st.sampled_from(before), min_size=1, unique=True))
                edges += [(p, target) for p in preds]
            elif kind == "join":
                preds = draw(st.lists(st.sampled_from(before), min_size=2, unique=True))
                joins.append((tuple(preds), target))
            else:
                choices.setdefault(draw(st.sampled_from(before)), []).append(target)
    for name in layers[-1]:
        if draw(st.booleans()):
            edges.append((name, END))
    routers = tuple((source, tuple(targets)) for source, targets in choices.items())
    names = [n.name for n in nodes]
    senders: tuple[tuple[str, int], ...] = ()
    worker = None
    if draw(st.booleans()):
        sources = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
        senders = tuple((s, draw(st.integers(1, 3))) for s in sources)
        worker = node(WORKER)
    loop = None
    if draw(st.booleans()):
        loop = (
            draw(st.sampled_from(layers[-1])),
            draw(st.sampled_from(layers[0])),
            draw(st.integers(2, 3)),
        )
    return GraphSpec(
        tuple(layers), nodes, tuple(edges), tuple(joins), routers, senders, worker, loop
    )


# -- building and running it -------------------------------------------------------------------


def _node_fn(node: Node, ask: Callable[[str], Any], counts_loop: bool) -> Callable[..., Any]:
    def body(state: dict[str, Any]) -> dict[str, Any]:
        answers = [ask(f"q-{node.name}-{k}") for k in range(node.asks)]
        if node.name == WORKER:
            entry = f"w:{state['item']}"
        else:
            entry = f"{node.name}@{len(state['log'])}/{state['total']}"
        update: dict[str, Any] = {
            "log": ["|".join([entry, *map(str, answers)])],
            "total": node.weight,
        }
        if counts_loop:
            update["loops"] = 1
        return update

    if not node.is_async:
        return body

    async def abody(state: dict[str, Any]) -> dict[str, Any]:
        for _ in range(node.yields):
            await anyio.lowlevel.checkpoint()
        return body(state)

    return abody


def _router(targets: tuple[str, ...]) -> Callable[[S], list[str]]:
    def path(state: S) -> list[str]:
        key = _key(state)
        return [t for k, t in enumerate(targets) if (key >> k) & 1] or [END]

    return path


def _sender(source: str, most: int) -> Callable[[S], list[Send]]:
    def path(state: S) -> list[Send]:
        return [Send(WORKER, {"item": f"{source}.{j}"}) for j in range(_key(state) % (most + 1))]

    return path


def _looper(target: str, bound: int) -> Callable[[S], str]:
    def path(state: S) -> str:
        return target if state["loops"] < bound else END

    return path


def build(spec: GraphSpec, *, pausing: bool) -> StateGraph:
    """The graph of `spec`; with `pausing`, nodes call interrupt(), else they get the answer."""
    ask: Callable[[str], Any] = interrupt if pausing else answer
    builder = StateGraph(S)
    for node in spec.nodes:
        counts_loop = spec.loop is not None and spec.loop[0] == node.name
        builder.add_node(node.name, _node_fn(node, ask, counts_loop))
    if spec.worker is not None:
        builder.add_node(WORKER, _node_fn(spec.worker, ask, False))
    for start, end in spec.edges:
        builder.add_edge(start, end)
    for starts, end in spec.joins:
        builder.add_edge(list(starts), end)
    for source, targets in spec.routers:
        builder.add_conditional_edges(source, _router(targets), [*targets, END])
    for source, most in spec.senders:
        builder.add_conditional_edges(source, _sender(source, most))
    if spec.loop is not None:
        source, target, bound = spec.loop
        builder.add_conditional_edges(source, _looper(target, bound), [target, END])
    return builder


@dataclass
class Outcome:
    values: dict[str, Any]
    pauses: list[list[str]]  # the questions pending at each pause, sorted
    asked: dict[str, str]  # every interrupt raised: id -> question
    history: list[tuple[str, int, tuple[str, ...]]]  # (source, step, next), newest first


async def run(
    builder: StateGraph,
    open_saver: Callable[[], Any],
    *,
    one_by_one: bool = False,
    durability: str = "async",
) -> Outcome:
    """Run from an empty log and answer pending interrupts by id until the thread ends: all of
    them at each pause, or with `one_by_one` only the first (by question). `open_saver()` gives
    a saver on the store; a new one is opened for each resume (a human answers later, from
    another process) and the store is destroyed at the end."""
    config: dict[str, Any] = {"configurable": {"thread_id": "t"}, **RUN_CONFIG}
    pauses: list[list[str]] = []
    asked: dict[str, str] = {}
    saver = open_saver()
    await saver.setup()
    try:
        graph = builder.compile(checkpointer=saver)
        result = await graph.ainvoke(
            {"log": [], "total": 0, "loops": 0}, config, durability=durability
        )
        while True:
            fresh = open_saver()
            if fresh is not saver:
                await saver.aclose()
                saver = fresh
                graph = builder.compile(checkpointer=saver)
            state = await graph.aget_state(config)
            if not state.interrupts:
                break
            assert "__interrupt__" in result
            assert len(pauses) < MAX_PAUSES, f"still pausing after {MAX_PAUSES} resumes"
            pending = sorted(state.interrupts, key=lambda i: i.value)
            pauses.append([i.value for i in pending])
            asked.update((i.id, i.value) for i in pending)
            if one_by_one:
                pending = pending[:1]
            result = await graph.ainvoke(
                Command(resume={i.id: answer(i.value) for i in pending}),
                config,
                durability=durability,
            )
        assert "__interrupt__" not in result
        assert state.next == ()
        assert result == state.values
        history = [
            (s.metadata["source"], s.metadata["step"], s.next)
            async for s in graph.aget_state_history(config)
        ]
    finally:
        await saver.destroy()
        await saver.aclose()
    return Outcome(dict(state.values), pauses, asked, history)


def on_memory(builder: StateGraph, **options: Any) -> Outcome:
    saver = InMemorySaver()
    return anyio.run(lambda: run(builder, lambda: saver, **options))


def on_driver(kind: str, builder: StateGraph, **options: Any) -> Outcome:
    """`run()` on a fresh store of driver `kind` (a file, a schema or a key prefix)."""
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sqlite":
            url, extra = f"sqlite:///{Path(tmp) / 'checkpoints.db'}", {}
        elif kind == "postgres":
            url, extra = POSTGRES_URL, {"schema": f"t_{uuid.uuid4().hex[:12]}"}
        else:
            url, extra = REDIS_URL, {"prefix": f"t{uuid.uuid4().hex[:12]}"}
        return anyio.run(lambda: run(builder, lambda: connect(url, **extra), **options))


# how the paused run is driven: answer all pending interrupts or one at a time; durability
run_options = st.fixed_dictionaries(
    {"one_by_one": st.booleans(), "durability": st.sampled_from(["sync", "async", "exit"])}
)


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=MEMORY_EXAMPLES, deadline=None, derandomize=True, database=None)
@given(graphs(), run_options)
def test_paused_and_resumed_equals_straight_through(
    spec: GraphSpec, options: dict[str, Any]
) -> None:
    straight = on_memory(build(spec, pausing=False), durability=options["durability"])
    paused = on_memory(build(spec, pausing=True), **options)
    assert straight.pauses == []
    assert paused.values == straight.values  # the log included: writes apply in task order
    if options["durability"] == "exit":  # saves only where a run stops: the end is the same
        assert paused.history[0] == straight.history[0]
    else:
        assert paused.history == straight.history
    # each interrupt's answer reached the node that raised it, once
    answered = sorted(a[2:] for e in paused.values["log"] for a in e.split("|")[1:])
    assert sorted(paused.asked.values()) == answered


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis"])
def test_driver_equals_memory(kind: str) -> None:
    require_package(f"hitl_async_{kind}", f"drivers/{kind}")
    if kind == "postgres":
        require_service("postgres", POSTGRES_URL)
    elif kind == "redis":
        require_service("redis", REDIS_URL)

    @settings(
        max_examples=DRIVER_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(graphs(), run_options)
    def check(spec: GraphSpec, options: dict[str, Any]) -> None:
        builder = build(spec, pausing=True)
        expected = on_memory(builder, **options)
        got = on_driver(kind, builder, **options)
        assert got.values == expected.values
        assert got.pauses == expected.pauses
        assert got.history == expected.history

    check()
