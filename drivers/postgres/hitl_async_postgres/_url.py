"""Turning a `postgresql://` URL plus keyword options into `PostgresSaver` arguments.

Driver options may be given in the URL's query string (`?schema=app&max_size=20`) or as keyword
arguments (which win). They are removed from the DSN handed to asyncpg, which would otherwise
send unknown query parameters to the server as session settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from hitl_async.checkpoint.options import url_options

__all__ = ["SCHEMES", "PostgresUrlOptions", "split_url"]

SCHEMES = frozenset({"postgresql", "postgres"})


@dataclass(frozen=True)
class PostgresUrlOptions:
    """The `PostgresSaver` options a `postgresql://` URL's query may set (see `PostgresSaver`);
    every other query parameter goes to asyncpg."""

    schema: str = "hitl"
    min_size: int = 1
    max_size: int = 10
    command_timeout: float | None = None
    connect_timeout: float | None = None
    statement_cache_size: int | None = None
    pgbouncer: bool = False
    setup: bool = True
    group_commit: bool = True
    batches_in_flight: int = 2
    max_batch: int = 64
    warm_connections: int | None = None


def split_url(url: str) -> tuple[str, dict[str, Any]]:
    """Return the DSN for asyncpg (driver options removed) and the options found in the URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError(
            f"not a PostgreSQL URL (scheme {parts.scheme!r}); expected "
            "postgresql://user@host:port/database"
        )
    options, kept = url_options(PostgresUrlOptions, parts.query)
    dsn = urlunsplit(parts._replace(query=urlencode(kept)))
    return dsn, options
