"""What every part of a compiled graph shares: the builder, its store, serializer, name and
lease ttl, and the checks of a call's config and options."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Self

from hitl_async._plan import Plan
from hitl_async.checkpoint.capabilities import Capability, require
from hitl_async.checkpoint.ids import check_id, validate_thread_id
from hitl_async.errors import InvalidConfigError
from hitl_async.graph.drawing import DrawableGraph
from hitl_async.runnables import merge_configs
from hitl_async.serde import default_serializer, register_types_from_annotation

if TYPE_CHECKING:
    from collections.abc import Sequence

    from hitl_async.checkpoint.base import BaseSaver
    from hitl_async.graph.state import StateGraph
    from hitl_async.types import All, Durability

__all__ = ["GraphBase"]


def _referenced_graphs(fn: Any) -> list[Any]:
    """Compiled graphs a node function refers to by name (its closure and globals)."""
    target = getattr(fn, "__func__", fn)
    try:
        refs = inspect.getclosurevars(target)
    except (TypeError, ValueError):
        return []
    found: list[Any] = []
    for value in (*refs.nonlocals.values(), *refs.globals.values()):
        if isinstance(value, GraphBase) and not any(v is value for v in found):
            found.append(value)
    return found


_DURABILITY = frozenset({"sync", "async", "exit"})


class GraphBase:
    """A validated graph with its store; `CompiledStateGraph` adds running, state and queue."""

    def __init__(
        self,
        builder: StateGraph,
        *,
        checkpointer: BaseSaver | None,
        interrupt_before: Sequence[str] | All | None,
        interrupt_after: Sequence[str] | All | None,
        name: str,
        store: Any | None = None,
        lease_ttl: float = 30.0,
        serializer: Any | None = None,
    ) -> None:
        self.builder = builder
        self.checkpointer = checkpointer
        self.interrupt_before_nodes = interrupt_before
        self.interrupt_after_nodes = interrupt_after
        self.name = name
        self.store = store
        self.plan = Plan(builder)
        self.lease_ttl = lease_ttl
        self.step_timeout: float | None = None
        """Seconds a superstep may run (LangGraph's `Pregel.step_timeout`, set on the compiled
        graph); past it the step's async tasks still running are cancelled and the run raises
        `StepTimeoutError`. None (or 0): no limit."""
        self.keeps_state = False
        self.stateless = False
        """`compile(checkpointer=False)`: as a subgraph, a call that runs to its end stores
        nothing (a call that pauses keeps its pause, so the answer resumes it)."""
        self.cache: Any = None
        """`compile(cache=...)`: where nodes with a `CachePolicy` keep their results."""
        self.called_subgraphs: dict[str, list[Any]] = {}
        """Compiled graphs each node has called as subgraphs from its function (for
        `get_state(subgraphs=True)`), in the order first called."""
        """`compile(checkpointer=True)`: as a subgraph, its state lives on between the calls of
        one parent thread (a namespace without the calling task's id), as in LangGraph."""
        # The state's types, and those of the graph's and its nodes' input schemas (a `Send`
        # may carry a node's input model), are stored and rebuilt without a register_type().
        schemas = [builder.state_schema, builder.input_schema.schema, builder.output_schema.schema]
        schemas += [n.input_schema.schema for n in builder.nodes.values() if n.input_schema]
        for schema in dict.fromkeys(schemas):
            register_types_from_annotation(schema)
        self.serde: Any = serializer if serializer is not None else default_serializer
        if serializer is not None:
            for schema in dict.fromkeys(schemas):
                serializer.register_types_from_annotation(schema)

    @property
    def nodes(self) -> dict[str, Any]:
        return dict(self.builder.nodes)

    def with_checkpointer(self, checkpointer: BaseSaver | None) -> Self:
        """A new compiled graph of the same builder, interrupt_before/after, name, store, cache,
        lease_ttl and step_timeout, whose threads live in `checkpointer` (this graph is left
        unchanged)."""
        new = type(self)(
            self.builder,
            checkpointer=checkpointer,
            interrupt_before=self.interrupt_before_nodes,
            interrupt_after=self.interrupt_after_nodes,
            name=self.name,
            store=self.store,
            lease_ttl=self.lease_ttl,
            serializer=self.serde,
        )
        # compile()'s settings made after construction (`cache=`, `checkpointer=True/False`)
        new.keeps_state, new.stateless, new.cache = self.keeps_state, self.stateless, self.cache
        new.step_timeout = self.step_timeout
        for key, value in vars(self).items():  # what a subclass set after construction
            if key not in vars(new):
                setattr(new, key, value)
        return new

    def copy(self, update: dict[str, Any] | None = None) -> Self:
        """A copy of the compiled graph (same builder, checkpointer and settings) with the
        attributes in `update` set, as LangGraph's `Pregel.copy`."""
        new = self.with_checkpointer(self.checkpointer)
        for key, value in (update or {}).items():
            setattr(new, key, value)
        return new

    def note_subgraph(self, node: str, graph: Any) -> None:
        """Remember that `node` called `graph` as a subgraph."""
        known = self.called_subgraphs.setdefault(node, [])
        if not any(g is graph for g in known):
            known.append(graph)

    def subgraphs_of(self, node: str) -> list[Any]:
        """The compiled graphs `node` runs as subgraphs: the node itself if it is one, else the
        ones it called, else the compiled graphs its function refers to (closure and globals,
        as LangGraph finds them)."""
        spec = self.builder.nodes.get(node)
        if spec is None:
            return []
        if spec.subgraph is not None:
            return [spec.subgraph]
        if node in self.called_subgraphs:
            return list(self.called_subgraphs[node])
        return _referenced_graphs(spec.fn)

    def get_graph(self, config: Any = None, *, xray: bool | int = False) -> DrawableGraph:
        """A picture of the graph (`.draw_mermaid()`); with `xray`, subgraphs drawn inside
        their node, as LangGraph's `get_graph(xray=...)`."""
        interrupts = (self.interrupt_before_nodes, self.interrupt_after_nodes)
        subgraphs: dict[str, DrawableGraph] = {}
        if xray:  # (`True`: every level; a number: that many)
            deeper = xray if isinstance(xray, bool) or xray <= 0 else xray - 1
            for name, spec in self.builder.nodes.items():
                found = [spec.subgraph] if spec.subgraph is not None else []
                found = found or _referenced_graphs(spec.fn)
                if found:
                    subgraphs[name] = found[0].get_graph(config, xray=deeper)
        return DrawableGraph.of(self.builder, self.name, interrupts, subgraphs)

    def _config(self, config: dict[str, Any] | None) -> dict[str, Any]:
        defaults = getattr(self, "config", None)  # `with_config`'s, under the call's own
        if defaults:
            if config is not None and not isinstance(config, dict):
                raise InvalidConfigError(
                    f"config must be a dict like {{'configurable': {{'thread_id': ...}}}}, got "
                    f"{type(config).__name__}"
                )
            config = merge_configs(defaults, config)
        if config is None:
            return {"configurable": {}}
        if not isinstance(config, dict):
            raise InvalidConfigError(
                f"config must be a dict like {{'configurable': {{'thread_id': ...}}}}, got "
                f"{type(config).__name__}"
            )
        conf = config.get("configurable")
        if conf:
            if not isinstance(conf, dict):
                raise InvalidConfigError(
                    f"config['configurable'] must be a dict like {{'thread_id': ...}}, got "
                    f"{type(conf).__name__}"
                )
            _check_position(conf)
            thread_id = conf.get("thread_id")
            if thread_id is not None and type(thread_id) is not str:
                # A UUID or an int (as LangGraph's docs use) is stored as its str form on every
                # driver; anything else is refused by the same check every store relies on.
                conf = {**conf, "thread_id": validate_thread_id(thread_id)}
                return {**config, "configurable": conf}
        return config

    def _durability(self, durability: Durability | None) -> str:
        value = durability or "async"
        if value not in _DURABILITY:
            raise InvalidConfigError(
                f"durability must be one of {sorted(_DURABILITY)}, got {durability!r}"
            )
        return value

    def _context(self, context: Any) -> Any:
        """The run's context, built from a dict when `context_schema` is a class."""
        schema = self.builder.context_schema
        if context is None or schema is None or not isinstance(context, dict):
            return context
        if hasattr(schema, "model_validate"):
            return schema.model_validate(context)
        if isinstance(schema, type) and hasattr(schema, "__dataclass_fields__"):
            return schema(**context)
        return context

    def _require_saver(self, what: str) -> BaseSaver:
        if self.checkpointer is None:
            raise InvalidConfigError(
                f"{what} needs a checkpointer: compile the graph with one, e.g. "
                "builder.compile(checkpointer=InMemorySaver())"
            )
        return self.checkpointer

    def _capable(self, what: str, capability: Capability) -> BaseSaver:
        """The checkpointer, if it has the capability `what` needs, else
        `MissingCapabilityError` (before any I/O)."""
        saver = self._require_saver(what)
        require(saver, capability, needed_for=what)
        return saver


def _check_position(conf: dict[str, Any]) -> None:
    """A `checkpoint_id` or `checkpoint_ns` a store can look up (a str, or absent), so a wrong
    one is the same `InvalidThreadIdError` on every driver, naming it, before any I/O."""
    for key in ("checkpoint_id", "checkpoint_ns"):
        value = conf.get(key)
        if value is not None:
            check_id(key, value, empty_ok=True)
