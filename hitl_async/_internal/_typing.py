"""LangGraph's `langgraph._internal._typing.MISSING`: the "no value" of a channel object's
`checkpoint()` and `from_checkpoint()` (from `hitl_async.channels.base`)."""

from __future__ import annotations

from hitl_async.channels.base import MISSING

__all__ = ["MISSING"]
