"""Run context reachable from inside a node, mirroring `langgraph.config`."""

from __future__ import annotations

from hitl_async._runtime import StreamWriter, get_config, get_stream_writer

__all__ = ["StreamWriter", "get_config", "get_stream_writer"]
