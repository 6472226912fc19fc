"""`hitl serve`: LangGraph's HTTP API (for `langgraph-sdk`, Agent Chat UI, Agent Inbox) over
hitl-async's durable stores. Install with the `server` extra.

`build_app(config, store_url)` gives the ASGI app a `hitl serve` process runs; the pieces
(`ServerCore`, `RunExecutor`, the `RecordStore` protocol) are importable for embedding.
"""

from __future__ import annotations

from hitl_async.server.records import RecordStore, open_records

__all__ = ["RecordStore", "open_records"]
