"""`AsyncRedisSaver` at `langgraph.checkpoint.redis.aio`'s path."""

from __future__ import annotations

from hitl_async.checkpoint.redis import AsyncRedisSaver

__all__ = ["AsyncRedisSaver"]
