"""hitl-async-sqlite: a durable SQLite checkpoint driver for hitl-async.

Installed, it registers the `sqlite` URL scheme, so `hitl_async.connect("sqlite:///app.db")`
returns a `SqliteSaver`.
"""

from __future__ import annotations

from hitl_async_sqlite.saver import SqliteSaver, from_url, parse_url

__all__ = ["SqliteSaver", "from_url", "parse_url"]
