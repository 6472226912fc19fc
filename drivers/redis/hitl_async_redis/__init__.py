"""hitl-async-redis: the Redis checkpoint driver for hitl-async (plain Redis >= 6, no modules).

`hitl_async.connect("redis://host:6379/0", prefix="myapp")` finds it through the
`hitl_async.drivers` entry points; `RedisSaver(url, ...)` builds one directly.
"""

from __future__ import annotations

from hitl_async_redis._saver import RedisSaver, from_url

__all__ = ["RedisSaver", "from_url"]
