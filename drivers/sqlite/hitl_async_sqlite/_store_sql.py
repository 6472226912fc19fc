"""The SQL of the SQLite store: its schema, and the WHERE clauses and pages of its reads.

Filters on scalar values are evaluated by SQLite (`json_type`/`json_extract`), others in Python
(see `hitl_async.store.filters` for the rules).
"""

from __future__ import annotations

from typing import Any

from hitl_async.store.backend import StoredRow
from hitl_async.store.filters import Condition

__all__ = ["COLUMNS", "SCHEMA", "condition", "page_query", "row", "scope", "where_clause"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS store_items (
    prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    expires_us INTEGER,
    ttl_minutes REAL,
    PRIMARY KEY (prefix, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_items_updated ON store_items (updated_us);
CREATE INDEX IF NOT EXISTS store_items_recent ON store_items (prefix, updated_us);
CREATE INDEX IF NOT EXISTS store_items_expires ON store_items (expires_us)
    WHERE expires_us IS NOT NULL;
CREATE TABLE IF NOT EXISTS store_vectors (
    prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    field TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (prefix, key, field)
) WITHOUT ROWID;
"""

COLUMNS = "prefix, key, value, created_us, updated_us, ttl_minutes"
_NUMBER = "json_type(value, ?) IN ('integer', 'real')"
_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _path(field: str) -> str:
    return f'$."{field}"'


def condition(cond: Condition) -> tuple[str, list[Any]]:
    """SQL for one scalar condition (see `hitl_async.store.filters` for the rules)."""
    path = _path(cond.field)
    operand = cond.operand
    if cond.op in _OPS:
        if cond.nan:
            return "0", []
        if isinstance(operand, str):
            return f"(json_type(value, ?) = 'text' AND json_extract(value, ?) {_OPS[cond.op]} ?)", [
                path,
                path,
                operand,
            ]
        return f"({_NUMBER} AND json_extract(value, ?) {_OPS[cond.op]} ?)", [path, path, operand]
    if isinstance(operand, bool):
        eq, params = "json_type(value, ?) = ?", [path, "true" if operand else "false"]
    elif operand is None:
        eq, params = "json_type(value, ?) = 'null'", [path]
    elif isinstance(operand, str) and operand[:1] not in ("[", "{"):
        # json_extract gives a JSON string's text, a number as a number (never equal to
        # text), true as 1 and an array or object as its JSON text (which starts with [ or {):
        # one parse of the row is exact for this operand.
        eq, params = "json_extract(value, ?) = ?", [path, operand]
    elif isinstance(operand, str):
        eq, params = (
            "(json_type(value, ?) = 'text' AND json_extract(value, ?) = ?)",
            [
                path,
                path,
                operand,
            ],
        )
    elif cond.nan:
        eq, params = "0", []
    else:
        eq, params = f"({_NUMBER} AND json_extract(value, ?) = ?)", [path, path, operand]
    if cond.op == "ne":
        return f"NOT COALESCE({eq}, 0)", params
    return eq, params


def scope(prefix: str, live_after: int | None) -> tuple[str, list[Any]]:
    """WHERE clauses for a namespace prefix (at label boundaries) and liveness."""
    clauses: list[str] = []
    params: list[Any] = []
    if prefix:
        # '/' is the character after '.', so [P., P/) is every namespace below P.
        clauses.append("(prefix = ? OR (prefix >= ? AND prefix < ?))")
        params += [prefix, prefix + ".", prefix + "/"]
    if live_after is not None:
        clauses.append("(expires_us IS NULL OR expires_us > ?)")
        params.append(live_after)
    return (" AND ".join(clauses) or "1"), params


def row(r: tuple[Any, ...]) -> StoredRow:
    """A `store_items` row read with `COLUMNS`."""
    return StoredRow(r[0], r[1], r[2], r[3], r[4], r[5])


def where_clause(
    prefix: str, conditions: tuple[Condition, ...], live_after: int | None
) -> tuple[str, list[Any]]:
    """WHERE clauses for a namespace prefix, liveness and pushed-down `conditions`."""
    where, params = scope(prefix, live_after)
    for cond in conditions:
        sql, extra = condition(cond)
        where += f" AND {sql}"
        params += extra
    return where, params


def page_query(
    prefix: str,
    conditions: tuple[Condition, ...],
    limit: int | None,
    offset: int,
    live_after: int | None,
) -> tuple[str, list[Any]]:
    """A page of a search. Under a prefix it is two parts merged: the namespace itself,
    read newest first along the (prefix, updated_us) index and stopped at the page's end,
    and the namespaces below it, sorted."""
    rest, extra = where_clause("", conditions, live_after)
    order = "ORDER BY updated_us DESC, prefix, key"
    page = [-1 if limit is None else limit, offset]
    if not prefix:
        return f"SELECT {COLUMNS} FROM store_items WHERE {rest} {order} LIMIT ? OFFSET ?", [
            *extra,
            *page,
        ]
    upto = -1 if limit is None else offset + limit
    sql = (
        f"SELECT * FROM (SELECT {COLUMNS} FROM store_items WHERE prefix = ? AND {rest} "
        "ORDER BY updated_us DESC, key LIMIT ?) UNION ALL "
        f"SELECT * FROM (SELECT {COLUMNS} FROM store_items WHERE prefix >= ? AND prefix < ? "
        f"AND {rest} {order} LIMIT ?) {order} LIMIT ? OFFSET ?"
    )
    return sql, [prefix, *extra, upto, prefix + ".", prefix + "/", *extra, upto, *page]
