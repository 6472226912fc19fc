"""`langgraph.utils.config` (legacy, still in LangGraph 1.x): the run's config and store."""

from __future__ import annotations

from hitl_async.config import get_config, get_store

__all__ = ["get_config", "get_store"]
