"""Reserved node and channel names shared by the builder, the scheduler and the savers."""

from __future__ import annotations

import os
from typing import Any, Final

START: Final = "__start__"
"""The virtual node a graph starts from: `add_edge(START, "first")`."""

END: Final = "__end__"
"""The virtual node a path ends in: `add_edge("last", END)`."""

PULL: Final = "__pregel_pull"
"""`PregelTask.path[0]` of a task triggered by edges (and of the input task), as LangGraph's."""

PUSH: Final = "__pregel_push"
"""`PregelTask.path[0]` of a task made by a `Send` or a `@task` call, as LangGraph's."""

INTERRUPT: Final = "__interrupt__"
"""Key of the stream event (and pending-write channel) that carries pending interrupts."""

# Pending-write channels that are not state keys.
RESUME: Final = "__resume__"
ERROR: Final = "__error__"
NEXT: Final = "__next__"
DONE: Final = "__done__"
TASK_RESULT: Final = "__task_result__"
"""Pending-write channel holding a finished `@task` call's result: `(call_index, result)`."""
TRACE: Final = "__trace__"
"""Null-task pending-write channel of a paused run: its span's traceparent, for the resume to link
to (written only while OpenTelemetry records; see `hitl_async.telemetry`)."""
TASK_RESULT_IDX: Final = 1 << 20
"""Write index of call i's result is TASK_RESULT_IDX + i, apart from the node's own writes."""

RESERVED: Final = frozenset({START, END, INTERRUPT, RESUME, ERROR, NEXT, DONE, TASK_RESULT})

# Fixed write indexes for special channels: a newer write with the same (task, idx) replaces the
# older one, so a task's interrupt, answers and error are each a single row.
SPECIAL_WRITE_IDX: Final = {INTERRUPT: -1, RESUME: -2, ERROR: -3, TRACE: -4}

DEFAULT_RECURSION_LIMIT: Final = int(os.environ.get("LANGGRAPH_DEFAULT_RECURSION_LIMIT", "10007"))
"""The supersteps a run may take when its config gives no `recursion_limit`: LangGraph's default
(10007), or the environment's `LANGGRAPH_DEFAULT_RECURSION_LIMIT`, as LangGraph reads it."""

TAG_NOSTREAM: Final = "nostream"
"""A chat model tagged with it (`model.with_config(tags=[TAG_NOSTREAM])`) is left out of
`stream_mode="messages"`, as in LangGraph."""

TAG_HIDDEN: Final = "langsmith:hidden"
"""A run tagged with it is hidden from tracing and from the `messages` stream, as in LangGraph."""

CONF: Final = "configurable"
"""The config key of a run's own settings (`config[CONF]["thread_id"]`), as LangGraph names it."""

TASKS: Final = "__pregel_tasks"
"""LangGraph's name of the channel `Send`s travel on; here only so code importing it works
(hitl-async keeps a step's `Send`s in the checkpoint's task list)."""

CONFIG_KEY_NODE_FINISHED: Final = "__pregel_node_finished"
"""A `configurable` key whose callable is called with a node's name each time the node completes
(a subgraph's nodes too), as LangGraph's same-named config key (a server follows runs by it)."""


def plain_name(name: Any) -> Any:
    """A node name given as a `str` subclass (a `str` enum member, as LangGraph allows) as the
    plain string it holds; anything else as it is."""
    if isinstance(name, str) and type(name) is not str:
        return str.__str__(name)
    return name


def __getattr__(name: str) -> object:
    """`Send` and `Interrupt` where LangGraph 0.x had them (`langgraph.constants`), for code
    ported from older tutorials (LangGraph 1.x still exports them there, deprecated)."""
    if name in ("Send", "Interrupt"):
        from hitl_async import types

        return getattr(types, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
