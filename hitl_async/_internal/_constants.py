"""LangGraph's `langgraph._internal._constants` names whose values a user of hitl-async sees:
the first element of a `PregelTask.path` (`PULL` for a task triggered by edges, `PUSH` for a
`Send`), the config keys, the reserved channel names (from `hitl_async.constants`) and
`OVERWRITE`, the key of an `Overwrite`'s JSON form."""

from __future__ import annotations

from typing import Final

from hitl_async.constants import (
    CONF,
    CONFIG_KEY_NODE_FINISHED,
    END,
    ERROR,
    INTERRUPT,
    PULL,
    PUSH,
    RESUME,
    START,
    TASKS,
)
from hitl_async.types import OVERWRITE

__all__ = [
    "CONF",
    "CONFIG_KEY_CHECKPOINT_ID",
    "CONFIG_KEY_CHECKPOINT_NS",
    "CONFIG_KEY_NODE_FINISHED",
    "CONFIG_KEY_THREAD_ID",
    "END",
    "ERROR",
    "INTERRUPT",
    "NS_END",
    "NS_SEP",
    "OVERWRITE",
    "PULL",
    "PUSH",
    "RESUME",
    "START",
    "TASKS",
]

CONFIG_KEY_CHECKPOINT_ID: Final = "checkpoint_id"
CONFIG_KEY_CHECKPOINT_NS: Final = "checkpoint_ns"
CONFIG_KEY_THREAD_ID: Final = "thread_id"
NS_SEP: Final = "|"
"""Separates the levels of a subgraph's `checkpoint_ns`."""
NS_END: Final = ":"
"""Separates a node's name from its task id in a `checkpoint_ns` level."""
