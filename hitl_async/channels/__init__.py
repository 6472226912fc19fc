"""Channel classes for state keys, as LangGraph's `langgraph.channels`: annotate a key with one
(`Annotated[list[str], Topic(str, accumulate=True)]`, or the class alone,
`Annotated[str, EphemeralValue]`) to choose how it merges writes and whether it is stored."""

from hitl_async.channels.base import BaseChannel
from hitl_async.channels.binop import BinaryOperatorAggregate
from hitl_async.channels.ephemeral_value import EphemeralValue
from hitl_async.channels.last_value import LastValue
from hitl_async.channels.topic import Topic
from hitl_async.channels.untracked_value import UntrackedValue

__all__ = [
    "BaseChannel",
    "BinaryOperatorAggregate",
    "EphemeralValue",
    "LastValue",
    "Topic",
    "UntrackedValue",
]
