"""hitl-async: an asyncio-native, LangGraph-compatible engine for human-in-the-loop graphs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hitl_async._connect import connect
from hitl_async.cache import BaseCache, InMemoryCache
from hitl_async.channels import (
    BinaryOperatorAggregate,
    EphemeralValue,
    LastValue,
    Topic,
    UntrackedValue,
)
from hitl_async.checkpoint.base import (
    BaseSaver,
    BlobRecord,
    CheckpointRecord,
    InboxEntry,
    Lease,
    LoadedCheckpoint,
    RunRequest,
    WriteRecord,
)
from hitl_async.checkpoint.capabilities import (
    Capability,
    ChangeFeed,
    InboxQuery,
    InboxStore,
    LeaseStore,
    RunQuery,
    RunQueueStore,
)
from hitl_async.checkpoint.memory import InMemorySaver, MemorySaver
from hitl_async.config import get_config, get_store, get_stream_writer
from hitl_async.constants import END, START
from hitl_async.errors import (
    AmbiguousResumeError,
    CheckpointConflictError,
    CheckpointCorruptError,
    CheckpointerRequiredError,
    CorruptRecordError,
    DecryptionError,
    DriverNotFoundError,
    EmptyChannelError,
    EmptyInputError,
    GeneratorNotSupportedError,
    GraphDrained,
    GraphInterrupt,
    GraphRecursionError,
    GraphValidationError,
    HitlError,
    InvalidCheckpointerError,
    InvalidConfigError,
    InvalidThreadIdError,
    InvalidUpdateError,
    LeaseLostError,
    MissingCapabilityError,
    NodeCancelledError,
    NodeError,
    NodeInterrupt,
    NodeTimeoutError,
    NoParentGraphError,
    NoPendingInterruptError,
    ResumeError,
    SerializationError,
    StepTimeoutError,
    StoreLostError,
    StoreUnavailableError,
    ThreadBusyError,
    UnknownInterruptError,
)
from hitl_async.func import EntrypointGraph, TaskFuture, entrypoint, task
from hitl_async.graph import CompiledStateGraph, StateGraph
from hitl_async.inbox import PendingInterrupt, list_pending
from hitl_async.managed import IsLastStep, ManagedValue, RemainingSteps
from hitl_async.runs import RunCancelledError, RunFailedError, RunHandle
from hitl_async.runtime import ExecutionInfo, RunControl, ServerInfo
from hitl_async.serde import Serializer, register_type, register_types_from_annotation
from hitl_async.store import (
    BaseStore,
    InMemoryStore,
    InvalidFilterError,
    InvalidIndexConfigError,
    InvalidNamespaceError,
    InvalidStoreRequestError,
    Item,
    SearchItem,
    StoreCorruptError,
    StoreValueError,
    connect_store,
)
from hitl_async.types import (
    CANCEL,
    CachePolicy,
    Command,
    Interrupt,
    Overwrite,
    PregelTask,
    RetryPolicy,
    Send,
    StateSnapshot,
    StateUpdate,
    TimeoutPolicy,
    interrupt,
)
from hitl_async.worker import Worker

if TYPE_CHECKING:
    from hitl_async.graph.message import MessagesState, add_messages

__all__ = [
    "CANCEL",
    "END",
    "START",
    "AmbiguousResumeError",
    "BaseCache",
    "BaseSaver",
    "BaseStore",
    "BinaryOperatorAggregate",
    "BlobRecord",
    "CachePolicy",
    "Capability",
    "ChangeFeed",
    "CheckpointConflictError",
    "CheckpointCorruptError",
    "CheckpointRecord",
    "CheckpointerRequiredError",
    "Command",
    "CompiledStateGraph",
    "CorruptRecordError",
    "DecryptionError",
    "DriverNotFoundError",
    "EmptyChannelError",
    "EmptyInputError",
    "EntrypointGraph",
    "EphemeralValue",
    "ExecutionInfo",
    "GeneratorNotSupportedError",
    "GraphDrained",
    "GraphInterrupt",
    "GraphRecursionError",
    "GraphValidationError",
    "HitlError",
    "InMemoryCache",
    "InMemorySaver",
    "InMemoryStore",
    "InboxEntry",
    "InboxQuery",
    "InboxStore",
    "Interrupt",
    "InvalidCheckpointerError",
    "InvalidConfigError",
    "InvalidFilterError",
    "InvalidIndexConfigError",
    "InvalidNamespaceError",
    "InvalidStoreRequestError",
    "InvalidThreadIdError",
    "InvalidUpdateError",
    "IsLastStep",
    "Item",
    "LastValue",
    "Lease",
    "LeaseLostError",
    "LeaseStore",
    "LoadedCheckpoint",
    "ManagedValue",
    "MemorySaver",
    "MessagesState",
    "MissingCapabilityError",
    "NoParentGraphError",
    "NoPendingInterruptError",
    "NodeCancelledError",
    "NodeError",
    "NodeInterrupt",
    "NodeTimeoutError",
    "Overwrite",
    "PendingInterrupt",
    "PregelTask",
    "RemainingSteps",
    "ResumeError",
    "RetryPolicy",
    "RunCancelledError",
    "RunControl",
    "RunFailedError",
    "RunHandle",
    "RunQuery",
    "RunQueueStore",
    "RunRequest",
    "SearchItem",
    "Send",
    "SerializationError",
    "Serializer",
    "ServerInfo",
    "StateGraph",
    "StateSnapshot",
    "StateUpdate",
    "StepTimeoutError",
    "StoreCorruptError",
    "StoreLostError",
    "StoreUnavailableError",
    "StoreValueError",
    "TaskFuture",
    "ThreadBusyError",
    "TimeoutPolicy",
    "Topic",
    "UnknownInterruptError",
    "UntrackedValue",
    "Worker",
    "WriteRecord",
    "add_messages",
    "connect",
    "connect_store",
    "entrypoint",
    "get_config",
    "get_store",
    "get_stream_writer",
    "interrupt",
    "list_pending",
    "register_type",
    "register_types_from_annotation",
    "task",
]


def __getattr__(name: str) -> Any:
    """`add_messages` and `MessagesState` need langchain-core: imported on first use."""
    if name in ("MessagesState", "add_messages"):
        from hitl_async.graph import message

        return getattr(message, name)
    raise AttributeError(f"module 'hitl_async' has no attribute {name!r}")
