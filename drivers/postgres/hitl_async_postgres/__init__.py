"""hitl-async-postgres: the PostgreSQL checkpoint driver for hitl-async (asyncpg).

`hitl_async.connect("postgresql://user@host/db", schema="app")` finds it through the
`hitl_async.drivers` entry point; `PostgresSaver(dsn, ...)` builds one directly.
"""

from __future__ import annotations

from hitl_async_postgres._migrate import LATEST_VERSION, MIGRATIONS
from hitl_async_postgres.saver import PostgresSaver, from_url

__all__ = ["LATEST_VERSION", "MIGRATIONS", "PostgresSaver", "from_url"]
