"""hitl-async: an asyncio-native, LangGraph-compatible engine for human-in-the-loop graphs."""

from __future__ import annotations

from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    LoadedCheckpoint,
    WriteRecord,
)
from hitl_async.checkpoint.memory import InMemorySaver, MemorySaver
from hitl_async.constants import END, START
from hitl_async.errors import (
    AmbiguousResumeError,
    CheckpointConflictError,
    CheckpointerRequiredError,
    DriverNotFoundError,
    EmptyInputError,
    GraphInterrupt,
    GraphRecursionError,
    GraphValidationError,
    HitlError,
    InvalidUpdateError,
    NoPendingInterruptError,
    ResumeError,
    SerializationError,
    UnknownInterruptError,
)
from hitl_async.types import (
    Command,
    Interrupt,
    PregelTask,
    RetryPolicy,
    Send,
    StateSnapshot,
    interrupt,
)

__all__ = [
    "END",
    "START",
    "AmbiguousResumeError",
    "BaseSaver",
    "BlobRecord",
    "CheckpointConflictError",
    "CheckpointRecord",
    "CheckpointerRequiredError",
    "Command",
    "DriverNotFoundError",
    "EmptyInputError",
    "GraphInterrupt",
    "GraphRecursionError",
    "GraphValidationError",
    "HitlError",
    "InMemorySaver",
    "Interrupt",
    "InvalidUpdateError",
    "LoadedCheckpoint",
    "MemorySaver",
    "NoPendingInterruptError",
    "PregelTask",
    "ResumeError",
    "RetryPolicy",
    "Send",
    "SerializationError",
    "StateSnapshot",
    "UnknownInterruptError",
    "WriteRecord",
    "interrupt",
]
