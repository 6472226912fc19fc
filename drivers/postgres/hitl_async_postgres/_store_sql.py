"""The SQL of the PostgreSQL memory store: its tables, and the statements a search, a page or an
upsert is built into (`Sql` numbers their `$n` parameters)."""

from __future__ import annotations

from typing import Any

import orjson

from hitl_async.store.filters import Condition

__all__ = [
    "COLUMNS",
    "Sql",
    "page_sql",
    "schema_sql",
    "scope",
    "upsert_one_sql",
    "upsert_sql",
    "where_sql",
]

COLUMNS = "i.prefix, i.key, i.value, i.created_us, i.updated_us, i.ttl_minutes"
_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def schema_sql(s: str) -> str:
    """The store's tables and indexes in schema `s` (quoted); idempotent."""
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.store_items (
    prefix text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    value json NOT NULL,
    created_us bigint NOT NULL,
    updated_us bigint NOT NULL,
    expires_us bigint,
    ttl_minutes double precision,
    PRIMARY KEY (prefix, key)
);
CREATE INDEX IF NOT EXISTS store_items_updated ON {s}.store_items (updated_us);
CREATE INDEX IF NOT EXISTS store_items_recent ON {s}.store_items (prefix, updated_us);
CREATE INDEX IF NOT EXISTS store_items_expires ON {s}.store_items (expires_us)
    WHERE expires_us IS NOT NULL;
CREATE TABLE IF NOT EXISTS {s}.store_vectors (
    prefix text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    field text NOT NULL,
    vector bytea NOT NULL,
    PRIMARY KEY (prefix, key, field)
);
"""


class Sql:
    """Builds a statement's `$n` parameters."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


def _condition(sql: Sql, cond: Condition) -> str:
    """SQL for one scalar condition (see `hitl_async.store.filters` for the rules)."""
    if cond.nan:  # NaN equals and orders with nothing
        return "TRUE" if cond.op == "ne" else "FALSE"
    field = sql.p(cond.field) + "::text"
    kind = f"json_typeof(i.value -> {field})"
    text = f"(i.value ->> {field})"
    operand = cond.operand
    if cond.op in _OPS:
        if isinstance(operand, str):
            return f"({kind} = 'string' AND {text} {_OPS[cond.op]} {sql.p(operand)}::text)"
        number = f"{sql.p(str(operand))}::numeric"
        return f"({kind} = 'number' AND {text}::numeric {_OPS[cond.op]} {number})"
    if operand is None or isinstance(operand, bool | str):
        # Every stored value is orjson's text, which a json column keeps verbatim, and `->`
        # returns a field's text as stored: so a string, bool or null is equal exactly when
        # its JSON text is the operand's (one parse of the row instead of two).
        encoded = orjson.dumps(operand).decode()
        eq = f"((i.value -> {field})::text = {sql.p(encoded)}::text)"
    else:
        eq = f"({kind} = 'number' AND {text}::numeric = {sql.p(str(operand))}::numeric)"
    return f"NOT COALESCE({eq}, FALSE)" if cond.op == "ne" else eq


def scope(sql: Sql, prefix: str, live_after: int | None) -> str:
    """The rows under namespace `prefix` (itself and below) that have not expired."""
    clauses = []
    if prefix:
        # '/' follows '.', so [P., P/) is every namespace below P (a range scan in "C" order).
        a, b, c = sql.p(prefix), sql.p(prefix + "."), sql.p(prefix + "/")
        clauses.append(f"(i.prefix = {a} OR (i.prefix >= {b} AND i.prefix < {c}))")
    if live_after is not None:
        clauses.append(f"(i.expires_us IS NULL OR i.expires_us > {sql.p(live_after)})")
    return " AND ".join(clauses) or "TRUE"


def upsert_sql(s: str, params: tuple[str, ...] = ("$1", "$2", "$3", "$4", "$5", "$6")) -> str:
    """Insert or replace the rows given as six arrays (at the `params` placeholders)."""
    p, k, v, n, e, t = params
    return (
        f"INSERT INTO {s}.store_items (prefix, key, value, created_us, updated_us, "
        f"expires_us, ttl_minutes) SELECT p, k, v::json, n, n, e, t FROM unnest({p}::text[], "
        f"{k}::text[], {v}::text[], {n}::bigint[], {e}::bigint[], {t}::float8[]) "
        "AS x(p, k, v, n, e, t) "
        "ON CONFLICT (prefix, key) DO UPDATE SET value = excluded.value, "
        "updated_us = excluded.updated_us, expires_us = excluded.expires_us, "
        "ttl_minutes = excluded.ttl_minutes"
    )


def upsert_one_sql(s: str) -> str:
    """Insert or replace one row given as six scalars."""
    return (
        f"INSERT INTO {s}.store_items (prefix, key, value, created_us, updated_us, "
        "expires_us, ttl_minutes) VALUES ($1, $2, $3::json, $4, $4, $5, $6) "
        "ON CONFLICT (prefix, key) DO UPDATE SET value = excluded.value, "
        "updated_us = excluded.updated_us, expires_us = excluded.expires_us, "
        "ttl_minutes = excluded.ttl_minutes"
    )


def where_sql(
    s: str, sql: Sql, prefix: str, conditions: tuple[Condition, ...], live_after: int | None
) -> str:
    """`scope` and every scalar condition, ANDed."""
    where = scope(sql, prefix, live_after)
    for cond in conditions:
        where += " AND " + _condition(sql, cond)
    return where


def page_sql(
    s: str,
    sql: Sql,
    prefix: str,
    conditions: tuple[Condition, ...],
    limit: int | None,
    offset: int,
    live_after: int | None,
) -> str:
    """A page of a search. Under a prefix it is two parts merged: the namespace itself,
    read newest first along the (prefix, updated_us) index and stopped at the page's end,
    and the namespaces below it, sorted."""
    order = "ORDER BY updated_us DESC, prefix, key"
    cols = COLUMNS
    if not prefix:
        where = where_sql(s, sql, "", conditions, live_after)
        page = f" LIMIT {sql.p(limit)}" if limit is not None else ""
        page += f" OFFSET {sql.p(offset)}"
        return f"SELECT {cols} FROM {s}.store_items i WHERE {where} {order}{page}"
    upto = "" if limit is None else f" LIMIT {sql.p(offset + limit)}"
    here = where_sql(s, sql, "", conditions, live_after)
    own = f"i.prefix = {sql.p(prefix)}"
    below_where = where_sql(s, sql, "", conditions, live_after)
    lo, hi = sql.p(prefix + "."), sql.p(prefix + "/")
    tail = f" LIMIT {sql.p(limit)}" if limit is not None else ""
    return (
        f"(SELECT {cols} FROM {s}.store_items i WHERE {own} AND {here} "
        f"ORDER BY i.updated_us DESC, i.key{upto}) UNION ALL "
        f"(SELECT {cols} FROM {s}.store_items i "
        f"WHERE i.prefix >= {lo} AND i.prefix < {hi} AND {below_where} {order}{upto}) "
        f"{order}{tail} OFFSET {sql.p(offset)}"
    )
