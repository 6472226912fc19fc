"""`StateGraph`: the builder users describe a workflow with, validated when compiled."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from hitl_async._node_policies import (
    NodeDefaults,
    add_handler_node,
    apply_node_policies,
    handler_node_name,
)
from hitl_async._schema import Field, StateSchema, annotated_with_class, inferred_input_schema
from hitl_async._timeouts import coerce_timeout
from hitl_async.constants import END, RESERVED, START, plain_name
from hitl_async.errors import GraphValidationError, InvalidCheckpointerError
from hitl_async.graph._validation import validate_graph
from hitl_async.runnables import RunnableNode, SupportsInvoke, is_runnable
from hitl_async.types import All, CachePolicy, RetryPolicy, TimeoutPolicy

if TYPE_CHECKING:
    from hitl_async.checkpoint.base import BaseSaver
    from hitl_async.graph.compiled import CompiledStateGraph

__all__ = ["StateGraph"]


def is_async_callable(fn: Any) -> bool:
    """Whether calling `fn` returns a coroutine (an async function or an async `__call__`)."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return inspect.iscoroutinefunction(call)


def _params(fn: Any) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return frozenset()


def _name_of(fn: Any) -> str:
    name = getattr(fn, "name", None) or getattr(fn, "__name__", None)
    if name is None and callable(fn) and not isinstance(fn, type):
        name = type(fn).__name__  # a callable object: its class's name, as in LangGraph
    if not isinstance(name, str):
        raise GraphValidationError(
            f"cannot infer a node name from {fn!r}; use add_node('name', action)"
        )
    return name


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node as the scheduler runs it."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    wants_config: bool
    wants_writer: bool
    wants_runtime: bool
    retry: tuple[RetryPolicy, ...]
    destinations: tuple[str, ...]
    input_schema: StateSchema | None
    metadata: dict[str, Any] = field(default_factory=dict)
    subgraph: CompiledStateGraph | None = None
    defer: bool = False
    """Run only when no other task is left to run (LangGraph's `defer=True`)."""
    cache_policy: CachePolicy | None = None
    """Reuse the node's writes for the same input (with `compile(cache=...)`)."""
    wants_store: bool = False
    """A `store` parameter: given the graph's store (`compile(store=...)`), as in LangGraph."""
    timeout: TimeoutPolicy | None = None
    """Limits of each attempt (`add_node(timeout=...)`, or the graph's default)."""
    error_handler: str | None = None
    """The node that runs in its place when it fails (`add_node(error_handler=...)`)."""
    is_error_handler: bool = False
    """This node is an error handler (`__error_handler__<node>`)."""
    declared: Callable[..., Any] | None = None
    """The action as given, when `fn` wraps it for a timeout or a `NodeError` parameter."""
    untimed: Callable[..., Any] | None = None
    """`fn` without its timeout (a `Send`'s own timeout applies in place of the node's)."""
    destination_labels: dict[str, str] = field(default_factory=dict)
    """The labels of `destinations` given as a dict (`{node: label}`), drawn on their edges."""
    traced_io: tuple[Callable[[Any], Any], Callable[[Any], Any]] | None = None
    """What the node's chain run (callbacks, `astream_events`) shows as its input and output,
    from the node's: an `@entrypoint` shows its function's, not its graph's channels."""

    def copy(self, update: dict[str, Any] | None = None) -> NodeSpec:
        """This node with the fields in `update` changed (LangGraph's `PregelNode.copy`)."""
        return dataclasses.replace(self, **(update or {}))

    @property
    def runnable(self) -> Any:
        """The node's action as LangGraph's `builder.nodes[name].runnable` gives it: a compiled
        subgraph or LangChain Runnable itself; a function as a `NodeAction` (its `.func` or
        `.afunc`)."""
        if self.subgraph is not None:
            return self.subgraph
        action = self.declared if self.declared is not None else self.fn
        if isinstance(action, RunnableNode):
            return action.runnable
        return NodeAction(self.name, action, is_async_callable(action))


@dataclass(frozen=True, slots=True)
class NodeAction:
    """A function node seen as LangGraph's `RunnableCallable`: `func` is a sync action (None
    for an async one), `afunc` an async action (None for a sync one)."""

    name: str
    action: Callable[..., Any]
    is_async: bool

    @property
    def func(self) -> Callable[..., Any] | None:
        return None if self.is_async else self.action

    @property
    def afunc(self) -> Callable[..., Any] | None:
        return self.action if self.is_async else None


@dataclass(frozen=True, slots=True)
class BranchSpec:
    """A conditional edge: `path(state)` names the next node(s), optionally through `path_map`."""

    source: str
    path: Callable[..., Any]
    path_map: dict[Hashable, str] | None
    is_async: bool
    wants_config: bool
    input_schema: StateSchema | None = None
    """The router's own input schema (its first parameter's annotation), if not the state's."""
    typed: bool = False
    """Its first parameter is annotated with a state-like class (the state's too): it does not
    see the extra keys its node returned."""


def _as_action(node: str, action: Any) -> tuple[Any, Callable[..., Any]]:
    """A node's action as the engine calls it, with the compiled graph it runs if it is one:
    a subgraph (`SubgraphNode`), a LangChain Runnable, ToolNode... (invoked, not called), a dict
    of those (LangChain's `RunnableParallel`, as LangGraph coerces it), or a callable."""
    from hitl_async.graph.compiled import CompiledStateGraph

    if isinstance(action, CompiledStateGraph):
        from hitl_async._subgraph import SubgraphNode

        return action, SubgraphNode(action)
    if is_runnable(action):
        return None, RunnableNode(action)
    if isinstance(action, dict):
        return None, RunnableNode(_parallel(node, action))
    if not callable(action):
        raise GraphValidationError(f"node {node!r}: action {action!r} is not callable")
    return None, action


def _parallel(node: str, steps: dict[str, Any]) -> Any:
    """A node given as a dict of runnables or functions runs them on the state side by side and
    writes each one's output to its key (LangChain's `RunnableParallel`, as LangGraph coerces
    it)."""
    try:
        from langchain_core.runnables import RunnableParallel
    except ImportError:
        raise GraphValidationError(
            f"node {node!r}: a dict of runnables needs langchain-core (pip install "
            "'hitl-async[langchain]'), or give the node a function"
        ) from None
    return RunnableParallel(steps)


class StateGraph:
    """A graph whose nodes read a shared state and return updates to it.

    `state_schema` is a TypedDict, dataclass or pydantic v2 model; annotate a key as
    `Annotated[type, reducer]` to merge writes with `reducer(old, new)` instead of replacing.
    """

    def __init__(
        self,
        state_schema: Any,
        context_schema: Any | None = None,
        *,
        input_schema: Any | None = None,
        output_schema: Any | None = None,
    ) -> None:
        self.state_schema = state_schema
        self.schema = StateSchema(state_schema)
        self.context_schema = context_schema
        # Without their own schema, input and output are the state schema's keys (separate
        # objects: keys nodes' input schemas add to the state are neither, as in LangGraph).
        own = self.schema if self.schema.is_root else StateSchema(state_schema)
        self.input_schema = own if input_schema is None else StateSchema(input_schema)
        self.output_schema = own if output_schema is None else StateSchema(output_schema)
        self.schema.include(self.input_schema)
        self.schema.include(self.output_schema)
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: set[tuple[str, str]] = set()
        self.edge_order: list[tuple[str, str]] = []
        self.waiting_edges: list[tuple[tuple[str, ...], str]] = []
        self.branches: dict[str, list[BranchSpec]] = {}
        self.compiled = False
        self.node_defaults = NodeDefaults()
        self.error_handlers = False
        """Some node has an error handler (set by `compile()`)."""

    # -- nodes ---------------------------------------------------------------------------------

    @property
    def channels(self) -> dict[str, Field]:
        """The state keys, from the state, input, output and node schemas (what LangGraph's
        `StateGraph.channels` holds a channel for), each with its reducer (None: the last
        value wins); managed keys (`RemainingSteps`...) are not stored, so not among them."""
        return dict(self.schema.fields)

    def add_node(
        self,
        node: str | Callable[..., Any] | SupportsInvoke,
        action: Callable[..., Any] | SupportsInvoke | dict[str, Any] | None = None,
        *,
        defer: bool = False,
        metadata: dict[str, Any] | None = None,
        input_schema: Any | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        destinations: dict[str, str] | tuple[str, ...] | None = None,
        cache_policy: CachePolicy | None = None,
        error_handler: Callable[..., Any] | SupportsInvoke | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
        **_: Any,
    ) -> StateGraph:
        """Add a node: `add_node("name", fn)` or `add_node(fn)` (named after the function).
        `error_handler=` and `timeout=`: see the README's "Node policies"."""
        if action is None:
            if isinstance(node, str):
                raise GraphValidationError(f"add_node({node!r}) needs an action (a function)")
            action, node = node, _name_of(node)
        node = plain_name(node)
        if not isinstance(node, str) or not node:
            raise GraphValidationError(f"node name must be a non-empty string, got {node!r}")
        if node in RESERVED:
            raise GraphValidationError(f"node name {node!r} is reserved; choose another name")
        for bad in (":", "|"):
            if bad in node:
                raise GraphValidationError(f"node name {node!r} must not contain {bad!r}")
        if node in self.nodes:
            raise GraphValidationError(f"node {node!r} is already in the graph")
        policy = coerce_timeout(timeout, node)
        subgraph, action = _as_action(node, action)
        retry: tuple[RetryPolicy, ...]
        if retry_policy is None:
            retry = ()
        elif isinstance(retry_policy, RetryPolicy):
            retry = (retry_policy,)
        else:
            retry = tuple(retry_policy)
        labels = dict(destinations) if isinstance(destinations, dict) else {}
        dests: tuple[str, ...] = tuple(destinations or ())
        params = _params(action)
        if input_schema is None:
            input_schema = inferred_input_schema(action, self.state_schema)
        node_schema = StateSchema(input_schema) if input_schema is not None else None
        if node_schema is not None:  # its keys are state keys too, as in LangGraph
            self.schema.include(node_schema)
        handler = None
        if error_handler is not None:  # a node of its own, listed before the node, as LangGraph
            handler = add_handler_node(self, handler_node_name(node), error_handler, input_schema)
        self.nodes[node] = NodeSpec(
            name=node,
            fn=action,
            is_async=is_async_callable(action),
            wants_config="config" in params,
            wants_writer="writer" in params,
            wants_runtime="runtime" in params,
            retry=retry,
            destinations=dests,
            destination_labels=labels,
            input_schema=node_schema,
            metadata=dict(metadata or {}),
            subgraph=subgraph,
            defer=defer,
            cache_policy=cache_policy,
            wants_store="store" in params,
            timeout=policy,
            error_handler=handler,
        )
        return self

    def set_node_defaults(
        self,
        *,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        cache_policy: CachePolicy | None = None,
        error_handler: Callable[..., Any] | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
    ) -> StateGraph:
        """Policies for every node that sets none of its own, applied at `compile()` (not to
        subgraphs), as in LangGraph: retry and timeout also to error handlers, cache and
        `error_handler` (the `__default_error_handler__` node) only to the other nodes."""
        self.node_defaults.set(retry_policy, cache_policy, error_handler, timeout)
        return self

    def add_sequence(
        self, nodes: Sequence[Callable[..., Any] | tuple[str, Callable[..., Any]]]
    ) -> StateGraph:
        """Add nodes and chain them with edges in the given order."""
        if not nodes:
            raise GraphValidationError("add_sequence() needs at least one node")
        previous: str | None = None
        for item in nodes:
            if isinstance(item, tuple):
                name, fn = item
            else:
                name, fn = _name_of(item), item
            self.add_node(name, fn)
            if previous is not None:
                self.add_edge(previous, name)
            previous = name
        return self

    # -- edges ---------------------------------------------------------------------------------

    def add_edge(self, start_key: str | Sequence[str], end_key: str) -> StateGraph:
        """`add_edge(a, b)`: b runs after a. `add_edge([a, b], c)`: c runs once both finished."""
        end_key = plain_name(end_key)
        start_key = (
            plain_name(start_key)
            if isinstance(start_key, str)
            else [plain_name(s) for s in start_key]
        )
        if end_key == START:
            raise GraphValidationError("START cannot be the end of an edge")
        if isinstance(start_key, str):
            if start_key == END:
                raise GraphValidationError("END cannot be the start of an edge")
            if (start_key, end_key) not in self.edges:
                self.edges.add((start_key, end_key))
                self.edge_order.append((start_key, end_key))
            return self
        starts = tuple(start_key)
        if not starts:
            raise GraphValidationError(f"add_edge([], {end_key!r}): list of start nodes is empty")
        for s in starts:
            if s in (START, END):
                raise GraphValidationError(
                    f"add_edge({list(starts)!r}, {end_key!r}): {s} cannot be one of the nodes "
                    "an edge waits for"
                )
        self.waiting_edges.append((starts, end_key))
        return self

    def triggers_of(self, node: str) -> tuple[str, ...]:
        """The channels LangGraph would trigger `node` by, sorted, as its tasks list them
        (`triggers`, `langgraph_triggers`): `branch:to:<node>`, and `join:<a>+<b>:<node>` per
        edge waiting on several nodes."""
        joins = [f"join:{'+'.join(starts)}:{end}" for starts, end in self.waiting_edges]
        return tuple(sorted({f"branch:to:{node}", *(j for j in joins if j.endswith(f":{node}"))}))

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: dict[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """After `source`, `path(state)` returns node name(s), `Send`s or END; `path_map` maps
        its return values to node names."""
        source = plain_name(source)
        if source == END:
            raise GraphValidationError("END cannot be the source of a conditional edge")
        if not callable(path):
            raise GraphValidationError(f"conditional edge from {source!r}: path is not callable")
        mapping: dict[Hashable, str] | None
        if path_map is None:
            mapping = None
        elif isinstance(path_map, dict):
            mapping = {key: plain_name(name) for key, name in path_map.items()}
        else:
            mapping = {name: plain_name(name) for name in path_map}
        self.branches.setdefault(source, []).append(
            BranchSpec(
                source=source,
                path=path,
                path_map=mapping,
                is_async=is_async_callable(path),
                wants_config="config" in _params(path),
                input_schema=self._router_schema(path),
                typed=annotated_with_class(path),
            )
        )
        return self

    def _router_schema(self, path: Callable[..., Any]) -> StateSchema | None:
        """A router's own input schema; its keys become state keys, as a node's do."""
        own = inferred_input_schema(path, self.state_schema)
        if own is None:
            return None
        schema = StateSchema(own)
        self.schema.include(schema)
        return schema

    def set_entry_point(self, key: str) -> StateGraph:
        return self.add_edge(START, key)

    def set_conditional_entry_point(
        self, path: Callable[..., Any], path_map: dict[Hashable, str] | None = None
    ) -> StateGraph:
        return self.add_conditional_edges(START, path, path_map)

    def set_finish_point(self, key: str) -> StateGraph:
        return self.add_edge(key, END)

    # -- compile -------------------------------------------------------------------------------

    def validate(
        self,
        interrupt_before: Sequence[str] | All | None = None,
        interrupt_after: Sequence[str] | All | None = None,
    ) -> None:
        """Raise `GraphValidationError` naming the first bad node or edge."""
        validate_graph(self, interrupt_before, interrupt_after)

    def compile(
        self,
        checkpointer: BaseSaver | bool | None = None,
        *,
        interrupt_before: Sequence[str] | All | None = None,
        interrupt_after: Sequence[str] | All | None = None,
        debug: bool = False,
        name: str | None = None,
        store: Any | None = None,
        cache: Any | None = None,
        lease_ttl: float = 30.0,
        serializer: Any | None = None,
    ) -> CompiledStateGraph:
        """Validate the graph and return a runnable `CompiledStateGraph`.

        `lease_ttl`: seconds a run's claim on its thread lasts without renewal (runs renew it
        while they run); after a crash, another process may recover the thread once it lapses.
        `serializer`: how checkpoints are encoded (default `hitl_async.serde.default_serializer`;
        e.g. `hitl_async.crypto.EncryptedSerializer` for authenticated encryption at rest).
        """
        from hitl_async.cache.store import as_cache
        from hitl_async.checkpoint.base import BaseSaver
        from hitl_async.graph.compiled import CompiledStateGraph

        if checkpointer not in (None, False, True) and not isinstance(checkpointer, BaseSaver):
            raise InvalidCheckpointerError(
                f"Invalid checkpointer provided: checkpointer must be a hitl_async saver "
                f"(InMemorySaver(), connect(url)), True, False or None, got "
                f"{type(checkpointer).__name__}"
            )
        apply_node_policies(self)
        self.validate(interrupt_before, interrupt_after)
        self.compiled = True
        compiled = CompiledStateGraph(
            self,
            checkpointer=checkpointer if isinstance(checkpointer, BaseSaver) else None,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            name=name or "LangGraph",
            store=store,
            lease_ttl=lease_ttl,
            serializer=serializer,
        )
        # checkpointer=True (a subgraph): keep its state between calls in the parent's thread.
        compiled.keeps_state = checkpointer is True
        compiled.stateless = checkpointer is False
        compiled.cache = as_cache(cache, compiled.serde)  # (a store: cached in it, shared)
        return compiled


def __getattr__(name: str) -> object:
    """`CompiledStateGraph` where LangGraph has it (`langgraph.graph.state`), without importing
    the compiled graph's module when the builder loads."""
    if name == "CompiledStateGraph":
        from hitl_async.graph.compiled import CompiledStateGraph

        return CompiledStateGraph
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
