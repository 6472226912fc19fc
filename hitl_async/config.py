"""Run context reachable from inside a node, mirroring `langgraph.config`."""

from __future__ import annotations

from hitl_async._runtime import get_config, get_stream_writer
from hitl_async.store.context import get_store
from hitl_async.types import StreamWriter

__all__ = ["StreamWriter", "get_config", "get_store", "get_stream_writer"]
