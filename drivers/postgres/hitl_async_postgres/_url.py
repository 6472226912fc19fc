"""Turning a `postgresql://` URL plus keyword options into `PostgresSaver` arguments.

Driver options may be given in the URL's query string (`?schema=app&max_size=20`) or as keyword
arguments (which win). They are removed from the DSN handed to asyncpg, which would otherwise
send unknown query parameters to the server as session settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["SCHEMES", "split_url"]

SCHEMES = frozenset({"postgresql", "postgres"})


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {text!r}")


_OPTION_TYPES: Mapping[str, Callable[[str], Any]] = {
    "schema": str,
    "min_size": int,
    "max_size": int,
    "command_timeout": float,
    "connect_timeout": float,
    "statement_cache_size": int,
    "pgbouncer": _bool,
    "setup": _bool,
    "group_commit": _bool,
    "batches_in_flight": int,
    "max_batch": int,
    "warm_connections": int,
}


def split_url(url: str) -> tuple[str, dict[str, Any]]:
    """Return the DSN for asyncpg (driver options removed) and the options found in the URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError(
            f"not a PostgreSQL URL (scheme {parts.scheme!r}); expected "
            "postgresql://user@host:port/database"
        )
    options: dict[str, Any] = {}
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        convert = _OPTION_TYPES.get(key)
        if convert is None:
            kept.append((key, value))
            continue
        try:
            options[key] = convert(value)
        except ValueError as exc:
            raise ValueError(f"bad value for URL option {key!r}: {exc}") from None
    dsn = urlunsplit(parts._replace(query=urlencode(kept)))
    return dsn, options
