"""Migration 7: a lease that merely expired (same token, nobody took the thread) still fences in:
the fence checks token and release only, so a run that ran late renews and writes; only a
take-over refuses it (`hitl_fence` and `hitl_commit_many` redefined without the expiry
condition)."""

from __future__ import annotations

from hitl_async_postgres._sql.v4_coordination import COORDINATION_SQL
from hitl_async_postgres._sql.v6_batches import BATCHES_SQL

__all__ = ["LATE_LEASE_SQL"]


def _function(sql: str, name: str) -> str:
    """The `CREATE OR REPLACE FUNCTION` statement of `name` in `sql` (its last definition)."""
    start = sql.rindex(f"CREATE OR REPLACE FUNCTION __SCHEMA__.{name}(")
    end = sql.index("$fn$;", start) + len("$fn$;")
    return sql[start:end]


def _without(statement: str, condition: str) -> str:
    if condition not in statement:
        raise RuntimeError(f"migration 7: {condition!r} not found")  # the SQL above changed
    return statement.replace(condition, "")


LATE_LEASE_SQL = "\n\n".join(
    (
        _without(
            _function(COORDINATION_SQL, "hitl_fence"),
            "\n            AND v_expires >= __SCHEMA__.hitl_now()",
        ),
        _without(
            _function(BATCHES_SQL, "hitl_commit_many"),
            "\n                    AND v_expires >= __SCHEMA__.hitl_now()",
        ),
    )
)
