"""Node policies a builder applies at `compile()` (LangGraph's `_NodeDefaults`): the graph's
defaults (`StateGraph.set_node_defaults`) for nodes that set none of their own, the default
error handler node, and the wrappers that give a node its timeout and its `error: NodeError`.

Everything here happens once per compile; a node with no policy keeps its function as given."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from hitl_async._runtime import active_scratchpad
from hitl_async._timeouts import check_timeout, coerce_timeout, timed
from hitl_async.errors import GraphValidationError
from hitl_async.types import CachePolicy, RetryPolicy, TimeoutPolicy

if TYPE_CHECKING:
    from hitl_async.graph.state import StateGraph

__all__ = [
    "DEFAULT_ERROR_HANDLER",
    "NodeDefaults",
    "add_handler_node",
    "apply_node_policies",
    "handler_node_name",
]

DEFAULT_ERROR_HANDLER = "__default_error_handler__"
"""The node `set_node_defaults(error_handler=...)` adds, LangGraph's name for it."""


def handler_node_name(node: str) -> str:
    """The node `add_node(node, ..., error_handler=...)` adds for the handler (LangGraph's)."""
    return f"__error_handler__{node}"


@dataclass(slots=True)
class NodeDefaults:
    """`StateGraph.set_node_defaults(...)`: what nodes without their own policy get."""

    retry: tuple[RetryPolicy, ...] = ()
    cache_policy: CachePolicy | None = None
    error_handler: Callable[..., Any] | None = None
    timeout: TimeoutPolicy | None = None

    def set(
        self,
        retry: RetryPolicy | Sequence[RetryPolicy] | None,
        cache_policy: CachePolicy | None,
        error_handler: Callable[..., Any] | None,
        timeout: float | timedelta | TimeoutPolicy | None,
    ) -> None:
        """Set what is given (None leaves a default as it was, as LangGraph)."""
        if retry is not None:
            self.retry = (retry,) if isinstance(retry, RetryPolicy) else tuple(retry)
        if cache_policy is not None:
            self.cache_policy = cache_policy
        if error_handler is not None:
            self.error_handler = error_handler
        if timeout is not None:
            self.timeout = coerce_timeout(timeout, "set_node_defaults")


def _wants_node_error(fn: Any) -> bool:
    """An `error` parameter annotated `NodeError`: LangGraph injects the failure there."""
    try:
        param = inspect.signature(fn).parameters.get("error")
    except (TypeError, ValueError):
        return False
    if param is None:
        return False
    note = param.annotation
    if isinstance(note, str):
        return note == "NodeError" or note.endswith(".NodeError")
    return getattr(note, "__name__", None) == "NodeError"


def _with_node_error(fn: Callable[..., Any], is_async: bool) -> Callable[..., Any]:
    """`fn` given `error=` the failure its task handles (None in a node that is no handler)."""

    def error() -> Any:
        pad = active_scratchpad()
        return pad.node_error if pad is not None else None

    if is_async:

        @functools.wraps(fn)
        async def acall(state: Any, **kwargs: Any) -> Any:
            return await fn(state, error=error(), **kwargs)

        return acall

    @functools.wraps(fn)
    def call(state: Any, **kwargs: Any) -> Any:
        return fn(state, error=error(), **kwargs)

    return call


def add_handler_node(builder: StateGraph, name: str, handler: Any, input_schema: Any) -> str:
    """Add error handler `name` (its node's input schema); refuse a name already taken."""
    if name in builder.nodes:
        raise GraphValidationError(
            f"Auto-generated error handler node `{name}` already exists: rename the node {name!r}"
        )
    builder.add_node(name, handler, input_schema=input_schema)
    builder.nodes[name] = replace(builder.nodes[name], is_error_handler=True)
    return name


def apply_node_policies(builder: StateGraph) -> None:
    """Give each node its effective policies (its own, else the graph's defaults) and the
    function that applies them; add the default error handler node."""
    defaults = builder.node_defaults
    default_handler = None
    if defaults.error_handler is not None:
        default_handler = DEFAULT_ERROR_HANDLER
        existing = builder.nodes.get(default_handler)
        if existing is not None and not existing.is_error_handler:
            raise GraphValidationError(
                f"Auto-generated default error handler node `{default_handler}` already "
                f"exists: rename the node {default_handler!r}"
            )
        if existing is None:
            add_handler_node(builder, default_handler, defaults.error_handler, None)
    for name, spec in list(builder.nodes.items()):
        changes: dict[str, Any] = {}
        regular = not spec.is_error_handler
        if regular and default_handler is not None and spec.error_handler is None:
            changes["error_handler"] = default_handler
        if defaults.retry and not spec.retry:
            changes["retry"] = defaults.retry
        if regular and defaults.cache_policy is not None and spec.cache_policy is None:
            changes["cache_policy"] = defaults.cache_policy
        timeout = spec.timeout or defaults.timeout
        if spec.timeout is None and timeout is not None:
            changes["timeout"] = timeout
        check_timeout(name, spec.is_async, timeout)
        base = spec.declared or spec.fn
        fn = base
        if _wants_node_error(base):
            fn = _with_node_error(fn, spec.is_async)
        if timeout is not None:
            changes["untimed"] = fn
            fn = timed(fn, timeout, name)
        if fn is not spec.fn:
            changes["fn"], changes["declared"] = fn, base
        if changes:
            builder.nodes[name] = replace(spec, **changes)
    builder.error_handlers = any(s.error_handler for s in builder.nodes.values())
