"""Graph building, mirroring `langgraph.graph` (`from hitl_async.graph import StateGraph`)."""

from __future__ import annotations

from hitl_async.constants import END, START
from hitl_async.graph.compiled import CompiledStateGraph
from hitl_async.graph.state import StateGraph

__all__ = ["END", "START", "CompiledStateGraph", "StateGraph"]
