"""`sqlite:` URLs: the database path and the options a URL's query may set."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from hitl_async.checkpoint.options import url_options

__all__ = ["MEMORY", "URL_OPTIONS", "SqliteUrlOptions", "parse_url"]

MEMORY = ":memory:"


@dataclass(frozen=True)
class SqliteUrlOptions:
    """The `SqliteSaver` options a `sqlite:` URL's query may set (see `SqliteSaver`)."""

    busy_timeout: float = 30.0
    synchronous: str | None = None
    journal_mode: str = "WAL"
    max_batch: int = 512


URL_OPTIONS = frozenset(f.name for f in fields(SqliteUrlOptions))
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[/\\]")


def parse_url(url: str) -> tuple[str, dict[str, Any]]:
    """Split a `sqlite:` URL into a database path and its query options.

    `sqlite:///relative.db` is relative to the current directory (made absolute here),
    `sqlite:////abs/path.db` is absolute, `sqlite:///:memory:`, `sqlite://:memory:` and
    `sqlite://` are a private in-memory database. Percent-escapes in the path are decoded; the
    query may set `busy_timeout`, `synchronous` and `journal_mode`.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        raise ValueError(f"not a sqlite URL (scheme {parts.scheme!r}); expected sqlite:///file.db")
    if parts.fragment:
        raise ValueError("a sqlite URL has no #fragment; percent-encode '#' in file names")
    parse_qsl(parts.query, strict_parsing=bool(parts.query))  # (a malformed query: an error)
    options, unknown = url_options(SqliteUrlOptions, parts.query)
    if unknown:
        names = sorted(name for name, _ in unknown)
        raise ValueError(f"unknown sqlite URL option(s) {names}; known: {sorted(URL_OPTIONS)}")
    path = unquote(parts.path)
    if parts.netloc:
        if parts.netloc == MEMORY and path in ("", "/"):
            return MEMORY, options
        raise ValueError(
            f"sqlite URLs have no host (got {parts.netloc!r}): use sqlite:///relative.db, "
            "sqlite:////absolute/path.db or sqlite:///:memory:"
        )
    relative = path[1:] if path.startswith("/") else path
    if relative in ("", MEMORY):
        return MEMORY, options
    if relative.startswith("/") or _WINDOWS_DRIVE.match(relative):
        return relative, options
    return os.path.abspath(relative), options
