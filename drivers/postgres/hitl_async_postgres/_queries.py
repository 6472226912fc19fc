"""The SQL text of every driver operation, rendered once per schema.

Each operation is a single statement, so it is a single round trip on a connection whose
statement cache already holds it. Loading and history return one row per checkpoint with its
blobs and pending writes aggregated into parallel arrays (same aggregation pass, same order).
Each blob is fetched by its full primary key (`OFFSET 0` keeps the lateral subquery from being
flattened into a join that would scan every blob of the thread).
"""

from __future__ import annotations

from functools import cache

__all__ = ["Queries"]

# The checkpoint columns plus its blobs (exactly those named by channel_versions) and its writes.
# A named blob that is not stored is simply absent from the arrays; the saver checks for that.
_WITH_BLOBS_AND_WRITES = """
SELECT c.checkpoint_id, c.parent_id, c.created_at,
       c.channel_versions::text AS channel_versions, c.header, c.metadata::text AS metadata,
       b.channels AS blob_channels, b.datas AS blob_data,
       w.task_ids, w.idxs, w.channels AS write_channels, w.datas AS write_data, w.paths
  FROM ({source}) AS c
 CROSS JOIN LATERAL (
       SELECT array_agg(cv.channel) AS channels, array_agg(bl.data) AS datas
         FROM jsonb_each_text(c.channel_versions) AS cv(channel, version)
        CROSS JOIN LATERAL (
              SELECT x.data FROM {s}.blobs x
               WHERE x.thread_id = c.thread_id AND x.checkpoint_ns = c.checkpoint_ns
                 AND x.channel = cv.channel AND x.version = cv.version
              OFFSET 0
              ) AS bl
       ) AS b
 CROSS JOIN LATERAL (
       SELECT array_agg(wr.task_id ORDER BY wr.task_id, wr.idx) AS task_ids,
              array_agg(wr.idx ORDER BY wr.task_id, wr.idx) AS idxs,
              array_agg(wr.channel ORDER BY wr.task_id, wr.idx) AS channels,
              array_agg(wr.data ORDER BY wr.task_id, wr.idx) AS datas,
              array_agg(wr.task_path ORDER BY wr.task_id, wr.idx) AS paths
         FROM {s}.writes wr
        WHERE wr.thread_id = c.thread_id AND wr.checkpoint_ns = c.checkpoint_ns
          AND wr.checkpoint_id = c.checkpoint_id
       ) AS w
"""


class Queries:
    """SQL for one (already quoted) schema, rendered once."""

    def __init__(self, schema: str) -> None:
        s = self.s = schema
        self.commit = (
            f"SELECT ok, actual FROM {s}.hitl_commit("
            "$1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::jsonb, $8::bytea, "
            "$9::jsonb, $10::text[], $11::text[], $12::bytea[], $13::text[], $14::integer[], "
            "$15::text[], $16::bytea[], $17::text[])"
        )
        self.put_writes = (
            f"INSERT INTO {s}.writes AS t"
            " (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, data, task_path)"
            " SELECT $1::text, $2::text, $3::text, w.task_id, w.idx, w.channel, w.data, w.task_path"
            "   FROM unnest($4::text[], $5::integer[], $6::text[], $7::bytea[], $8::text[])"
            "        AS w(task_id, idx, channel, data, task_path)"
            " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE"
            " SET channel = EXCLUDED.channel, data = EXCLUDED.data, task_path = EXCLUDED.task_path"
        )
        self.load_head = _WITH_BLOBS_AND_WRITES.format(
            s=s,
            source=(
                f"SELECT * FROM {s}.checkpoints"
                " WHERE thread_id = $1::text AND checkpoint_ns = $2::text"
                f"   AND checkpoint_id = (SELECT head_id FROM {s}.threads"
                "                         WHERE thread_id = $1::text AND checkpoint_ns = $2::text)"
            ),
        )
        self.load_id = _WITH_BLOBS_AND_WRITES.format(
            s=s,
            source=(
                f"SELECT * FROM {s}.checkpoints"
                " WHERE thread_id = $1::text AND checkpoint_ns = $2::text"
                "   AND checkpoint_id = $3::text"
            ),
        )
        self.delete_thread = f"SELECT {s}.hitl_delete_thread($1::text)"
        self.prune = f"SELECT {s}.hitl_prune($1::text, $2::integer, $3::text)"
        self.list_threads = (
            f"SELECT DISTINCT thread_id FROM {s}.threads WHERE head_id IS NOT NULL LIMIT $1::bigint"
        )

    def history(self, *, before: bool, exact: bool, loose: bool) -> str:
        """Newest first via a backward scan of the primary key; `$3` is the limit (NULL: all).

        Parameters: $1 thread, $2 ns, $3 limit, then, each only if its flag is set: `before`,
        the `exact` filter part (string and null values: jsonb containment `@>` is equality for
        those), the `loose` part (everything else, booleans already mapped to 0/1 by the caller),
        compared by `hitl_json_norm(value) = filter value`: Python `==` semantics.
        """
        return _history_sql(self.s, before, exact, loose)


@cache
def _history_sql(s: str, before: bool, exact: bool, loose: bool) -> str:
    conditions = ["h.thread_id = $1::text", "h.checkpoint_ns = $2::text"]
    n = 3
    if before:
        n += 1
        conditions.append(f"h.checkpoint_id < ${n}::text")
    if exact:
        n += 1
        conditions.append(f"h.metadata @> ${n}::jsonb")
    if loose:
        n += 1
        conditions.append(
            f"NOT EXISTS (SELECT 1 FROM jsonb_each(${n}::jsonb) AS f(key, value)"
            f"             WHERE {s}.hitl_json_norm(h.metadata -> f.key) IS DISTINCT FROM f.value)"
        )
    source = (
        f"SELECT * FROM {s}.checkpoints h WHERE {' AND '.join(conditions)}"
        " ORDER BY h.checkpoint_id DESC LIMIT $3::bigint"
    )
    return _WITH_BLOBS_AND_WRITES.format(source=source, s=s) + " ORDER BY c.checkpoint_id DESC"
