"""The PostgreSQL driver's schema versions (`MIGRATIONS`), applying them (`migrate`) and
removing them (`destroy`). The SQL of each version is in the `_sql` package, one module per era.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

from hitl_async.errors import InvalidConfigError
from hitl_async_postgres._schema import MIGRATION_LOCK_KEY, PLACEHOLDER, Migration, quote_schema
from hitl_async_postgres._sql.v1_checkpoints import (
    COMMIT_NO_REUSE_SQL,
    FUNCTIONS_SQL,
    TABLES_SQL,
)
from hitl_async_postgres._sql.v4_coordination import COORDINATION_SQL
from hitl_async_postgres._sql.v5_chains import CHAINS_SQL
from hitl_async_postgres._sql.v6_batches import BATCHES_SQL
from hitl_async_postgres._sql.v7_late_lease import LATE_LEASE_SQL
from hitl_async_postgres._sql.v8_cache import CACHE_SQL

__all__ = [
    "DEFAULT_SCHEMA",
    "LATEST_VERSION",
    "MIGRATIONS",
    "destroy",
    "migrate",
]

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    AnyConnection: TypeAlias = asyncpg.Connection | PoolConnectionProxy[Any]
    """A connection of its own, or one lent by a pool."""

DEFAULT_SCHEMA = "hitl"
"""Where the driver keeps its tables unless told otherwise: a schema of its own, so it shares a
database with LangGraph's tables (`checkpoints`, ...) and other applications' without touching
them. Versions before 0.2 used `public`: such a store is moved here on first use (below)."""

_TABLES = (
    "threads",
    "checkpoints",
    "blobs",
    "writes",
    "leases",
    "inbox",
    "runs",
    "hitl_migrations",
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "threads, checkpoints, blobs and writes tables", TABLES_SQL),
    Migration(
        2, "functions hitl_commit, hitl_prune, hitl_delete_thread, hitl_json_norm", FUNCTIONS_SQL
    ),
    Migration(3, "hitl_commit refuses a checkpoint id already stored", COMMIT_NO_REUSE_SQL),
    Migration(
        4,
        "coordination: leases, inbox, runs; fenced hitl_commit/hitl_put_writes; NOTIFY",
        COORDINATION_SQL,
    ),
    Migration(
        5,
        "hitl_commit_many, hitl_acquire_and_load: one call at each end of a run",
        CHAINS_SQL,
    ),
    Migration(
        6,
        "group commit: hitl_acquire_and_load_batch, hitl_commit_many_batch, "
        "hitl_put_writes_batch, hitl_release_batch; a leaner hitl_commit_many; plpgsql notify "
        "functions",
        BATCHES_SQL,
    ),
    Migration(7, "a late lease not taken over still writes (fence on token only)", LATE_LEASE_SQL),
    Migration(8, "node_cache: node results cached for compile(cache=saver)", CACHE_SQL),
)
LATEST_VERSION = max(m.version for m in MIGRATIONS)


def _functions(sql: str) -> list[str]:
    """Every `CREATE OR REPLACE FUNCTION` statement of a migration's SQL, in order."""
    out: list[str] = []
    start = sql.find("CREATE OR REPLACE FUNCTION")
    while start >= 0:
        end = sql.index("$fn$;", sql.index("$fn$", start) + 4) + len("$fn$;")
        out.append(sql[start:end])
        start = sql.find("CREATE OR REPLACE FUNCTION", end)
    return out


async def _adopt_legacy(conn: AnyConnection, quoted: str) -> None:
    """Move a store an earlier version kept in `public` (its `hitl_migrations` table says so)
    into the (new, empty) default schema: its tables move as they are, its functions are
    dropped from `public` and made again in the new schema (their bodies name the schema).
    Runs inside `migrate`'s transaction and lock: all or nothing."""
    legacy = await conn.fetchval("SELECT to_regclass('public.hitl_migrations') IS NOT NULL")
    if not legacy:
        return
    rows = await conn.fetch("SELECT version FROM public.hitl_migrations")
    versions = {int(r["version"]) for r in rows}
    for table in _TABLES:
        if await conn.fetchval("SELECT to_regclass($1::text) IS NOT NULL", f"public.{table}"):
            await conn.execute(f"ALTER TABLE public.{table} SET SCHEMA {quoted}")
    drops = [s for s in _OBJECTS.split("; ") if s.startswith("DROP FUNCTION")]
    await conn.execute("; ".join(drops).replace(PLACEHOLDER, "public"))
    for migration in MIGRATIONS:
        if migration.version in versions:
            for statement in _functions(migration.sql):
                await conn.execute(Migration(0, "", statement).render(quoted))


async def _applied(conn: AnyConnection, quoted: str, schema: str) -> set[int]:
    """Versions recorded in the schema, or an empty set when it has no migrations table yet."""
    exists = await conn.fetchval(
        "SELECT to_regclass(format('%I.hitl_migrations', $1::text)) IS NOT NULL", schema
    )
    if not exists:
        return set()
    rows = await conn.fetch(f"SELECT version FROM {quoted}.hitl_migrations")
    return {int(r["version"]) for r in rows}


async def migrate(conn: AnyConnection, schema: str) -> list[int]:
    """Bring `schema` up to `LATEST_VERSION`; return the versions applied by this call.

    Idempotent; concurrent callers serialize on the advisory lock. An up-to-date schema is
    detected without taking the lock.
    """
    quoted = quote_schema(schema)
    if LATEST_VERSION in await _applied(conn, quoted, schema):
        return []
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1::bigint)", MIGRATION_LOCK_KEY)
        has_schema = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1::text)", schema
        )
        if not has_schema:
            await conn.execute(f"CREATE SCHEMA {quoted}")
        if schema == DEFAULT_SCHEMA and not await _applied(conn, quoted, schema):
            await _adopt_legacy(conn, quoted)
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {quoted}.hitl_migrations ("
            " version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = await _applied(conn, quoted, schema)
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            try:
                await conn.execute(migration.render(quoted))
            except asyncpg.DuplicateTableError as exc:
                raise InvalidConfigError(
                    f"PostgreSQL schema {schema!r} already holds a table hitl-async needs "
                    f"({exc}), created by another application (LangGraph's savers use "
                    "'checkpoints', 'checkpoint_blobs', 'checkpoint_writes'). hitl-async keeps "
                    f"its tables in a schema of their own: use the default ({DEFAULT_SCHEMA!r}) "
                    "or pass another schema=..."
                ) from exc
            await conn.execute(
                f"INSERT INTO {quoted}.hitl_migrations (version, applied_at) VALUES ($1, now())",
                migration.version,
            )
            applied.append(migration.version)
    return applied


_OBJECTS = (
    # functions first: hitl_claim returns rows of the `runs` table type
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_commit_many_batch, "
    "__SCHEMA__.hitl_acquire_and_load_batch, __SCHEMA__.hitl_put_writes_batch, "
    "__SCHEMA__.hitl_release_batch; "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_commit_many, __SCHEMA__.hitl_acquire_and_load, "
    "__SCHEMA__.hitl_acquire, __SCHEMA__.hitl_release; "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_claim(text, text, double precision); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_commit("
    "text, text, text, text, text, text, jsonb, bytea, jsonb, text[], text[], bytea[], "
    "text[], integer[], text[], bytea[], text[], bigint, "
    "text[], text[], text[], bytea[], text[], double precision[], bytea[], text[]); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_put_writes("
    "text, text, text, text[], integer[], text[], bytea[], text[], bigint, "
    "text[], text[], text[], bytea[], text[], double precision[], bytea[], text[]); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_set_inbox("
    "text, text[], text[], text[], bytea[], text[], double precision[], bytea[], text[]); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_fence(text, bigint); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_notify_change(text); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_notify_queue(text); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_now(); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_commit("
    "text, text, text, text, text, text, jsonb, bytea, jsonb, text[], text[], bytea[], "
    "text[], integer[], text[], bytea[], text[]); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_prune(text, integer, text); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_delete_thread(text); "
    "DROP FUNCTION IF EXISTS __SCHEMA__.hitl_json_norm(jsonb); "
    "DROP TABLE IF EXISTS __SCHEMA__.node_cache; "
    "DROP TABLE IF EXISTS __SCHEMA__.runs, __SCHEMA__.inbox, __SCHEMA__.leases, "
    "__SCHEMA__.writes, __SCHEMA__.blobs, __SCHEMA__.checkpoints, "
    "__SCHEMA__.threads, __SCHEMA__.hitl_migrations"
)


async def destroy(conn: AnyConnection, schema: str) -> None:
    """Drop everything the driver created: the whole schema, or only its objects in `public`."""
    quoted = quote_schema(schema)
    if schema == "public":
        await conn.execute(_OBJECTS.replace(PLACEHOLDER, quoted))
    else:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
