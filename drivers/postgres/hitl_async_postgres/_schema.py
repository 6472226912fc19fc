"""What the PostgreSQL driver's schema migrations share: the `Migration` record, the schema name
check and placeholder, the NOTIFY channels, the migration lock key (their SQL is in `_sql`).

Every migration runs once per schema, recorded in `<schema>.hitl_migrations`. `migrate()` holds a
transaction-scoped advisory lock on a fixed key, so any number of processes may call it at once on
a fresh database: the first one creates everything, the others then find it done.

Key columns use `COLLATE "C"` so ids compare and sort by code point, exactly like Python strings
(the in-memory reference driver), whatever the database's default collation is.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "MIGRATION_LOCK_KEY",
    "PLACEHOLDER",
    "Channels",
    "Migration",
    "channels",
    "quote_schema",
]

# pg_advisory_xact_lock key shared by every hitl-async-postgres process ("hitl_mig" in ASCII).
MIGRATION_LOCK_KEY = 0x6869_746C_5F6D_6967

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
PLACEHOLDER = "__SCHEMA__"
_CHANGE_PLACEHOLDER = "__CHANGE_CHANNEL__"
_QUEUE_PLACEHOLDER = "__QUEUE_CHANNEL__"
# A NOTIFY channel is an identifier: at most NAMEDATALEN - 1 bytes.
_MAX_CHANNEL = 63


def quote_schema(schema: str) -> str:
    """Validate `schema` as a plain SQL identifier and return it double-quoted."""
    if not isinstance(schema, str) or not _IDENTIFIER.fullmatch(schema):
        raise ValueError(
            f"invalid PostgreSQL schema name {schema!r}: use 1-63 letters, digits and "
            "underscores, not starting with a digit"
        )
    return f'"{schema}"'


@dataclass(frozen=True, slots=True)
class Channels:
    """The LISTEN/NOTIFY channels of one schema: thread changes (payload: the thread id) and the
    run queue (payload: the queue name). An empty payload means "any"."""

    change: str
    queue: str


def channels(schema: str) -> Channels:
    """`hitl.<schema>.change` / `hitl.<schema>.queue`, hashed when too long for an identifier."""
    base = f"hitl.{schema}"
    if len(base) + len(".change") > _MAX_CHANNEL:
        base = "hitl." + hashlib.sha256(schema.encode()).hexdigest()[:32]
    return Channels(change=f"{base}.change", queue=f"{base}.queue")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version: SQL with `__SCHEMA__` standing for the quoted schema name (and
    `__CHANGE_CHANNEL__` / `__QUEUE_CHANNEL__` for the schema's NOTIFY channels, as literals)."""

    version: int
    description: str
    sql: str

    def render(self, quoted_schema: str) -> str:
        chan = channels(quoted_schema.strip('"'))
        return (
            self.sql.replace(PLACEHOLDER, quoted_schema)
            .replace(_CHANGE_PLACEHOLDER, f"'{chan.change}'")
            .replace(_QUEUE_PLACEHOLDER, f"'{chan.queue}'")
        )
