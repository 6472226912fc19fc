"""The SQL text of every driver operation, rendered once per schema.

Each operation is a single statement, so it is a single round trip on a connection whose
statement cache already holds it. Loading and history return one row per checkpoint with its
blobs and pending writes aggregated into parallel arrays (same aggregation pass, same order).
Each blob is fetched by its full primary key (`OFFSET 0` keeps the lateral subquery from being
flattened into a join that would scan every blob of the thread).

Coordination statements compare with "now" as `(SELECT hitl_now())`: an uncommon-looking form,
but an uncorrelated subquery is evaluated once and, unlike a volatile call, can bound an index
scan (`leases_expiry`).
"""

from __future__ import annotations

from functools import cache

__all__ = ["WITH_BLOBS_AND_WRITES", "Queries"]

# The checkpoint columns plus its blobs (exactly those named by channel_versions) and its writes.
# A named blob that is not stored is simply absent from the arrays; the saver checks for that.
# Migration 5 renders it into the stored function `hitl_acquire_and_load` (with `{s}` as the
# schema placeholder): a change here needs a new migration re-creating that function, since an
# applied migration never runs again.
WITH_BLOBS_AND_WRITES = """
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
        now = f"(SELECT {s}.hitl_now())"
        # $18 the lease token (NULL: unfenced), $19..$26 the inbox columns (NULL: unchanged).
        self.commit = (
            f"SELECT ok, actual, lease_ok, lease_current FROM {s}.hitl_commit("
            "$1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::jsonb, $8::bytea, "
            "$9::jsonb, $10::text[], $11::text[], $12::bytea[], $13::text[], $14::integer[], "
            f"$15::text[], $16::bytea[], $17::text[], $18::bigint, {_inbox_args(19)})"
        )
        # A chain (see `hitl_commit_many`, migration 5): $1 thread, $2 ns, $3 lease token, $4
        # release; per checkpoint $5 expected head .. $11 metadata; blobs $12 end offsets and
        # $13..$15; writes $16 end offsets and $17..$21; $22..$29 the inbox (NULL: unchanged).
        # JSON arrays are sent as text[] and cast by the server: asyncpg has no built-in codec
        # for jsonb[] and would look the type up (a ~10 ms query) on every new connection.
        self.commit_many = (
            "SELECT ok, failed, actual, lease_ok, lease_current"
            f" FROM {s}.hitl_commit_many($1::text, $2::text, $3::bigint, $4::boolean,"
            " $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]::jsonb[], $10::bytea[],"
            " $11::text[]::jsonb[], $12::integer[], $13::text[], $14::text[], $15::bytea[],"
            " $16::integer[], $17::text[], $18::integer[], $19::text[], $20::bytea[],"
            f" $21::text[], {_inbox_args(22)})"
        )
        # Group commit (migration 6): many commit_many calls in one; see
        # `hitl_commit_many_batch`. Per request $1 thread .. $9 inbox end; per checkpoint $10
        # expected head .. $16 metadata, $17/$18 its blob/write end offsets in its request;
        # blobs $19..$21, writes $22..$26, inbox entries $27..$34.
        self.commit_many_batch = (
            "SELECT ord, ok, failed, actual, lease_ok, lease_current"
            f" FROM {s}.hitl_commit_many_batch($1::text[], $2::text[], $3::bigint[],"
            " $4::boolean[], $5::integer[], $6::integer[], $7::integer[], $8::boolean[],"
            " $9::integer[], $10::text[], $11::text[], $12::text[], $13::text[],"
            " $14::text[]::jsonb[], $15::bytea[], $16::text[]::jsonb[], $17::integer[],"
            " $18::integer[], $19::text[],"
            " $20::text[], $21::bytea[], $22::text[], $23::integer[], $24::text[],"
            f" $25::bytea[], $26::text[], {_inbox_args(27)})"
        )
        self.put_writes = (
            f"SELECT lease_ok, lease_current FROM {s}.hitl_put_writes("
            "$1::text, $2::text, $3::text, $4::text[], $5::integer[], $6::text[], $7::bytea[], "
            f"$8::text[], $9::bigint, {_inbox_args(10)})"
        )
        # Group commit (migration 6): many put_writes calls in one; see `hitl_put_writes_batch`.
        # Per request $1 thread .. $7 inbox end; writes $8..$12, inbox entries $13..$20.
        self.put_writes_batch = (
            "SELECT ord, lease_ok, lease_current"
            f" FROM {s}.hitl_put_writes_batch($1::text[], $2::text[], $3::text[],"
            " $4::bigint[], $5::integer[], $6::boolean[], $7::integer[], $8::text[],"
            " $9::integer[], $10::text[], $11::bytea[], $12::text[],"
            f" {_inbox_args(13)})"
        )
        self.load_head = WITH_BLOBS_AND_WRITES.format(
            s=s,
            source=(
                f"SELECT * FROM {s}.checkpoints"
                " WHERE thread_id = $1::text AND checkpoint_ns = $2::text"
                f"   AND checkpoint_id = (SELECT head_id FROM {s}.threads"
                "                         WHERE thread_id = $1::text AND checkpoint_ns = $2::text)"
            ),
        )
        self.load_id = WITH_BLOBS_AND_WRITES.format(
            s=s,
            source=(
                f"SELECT * FROM {s}.checkpoints"
                " WHERE thread_id = $1::text AND checkpoint_ns = $2::text"
                "   AND checkpoint_id = $3::text"
            ),
        )
        self.delete_thread = f"SELECT {s}.hitl_delete_thread($1::text)"
        self.prune = f"SELECT {s}.hitl_prune($1::text, $2::integer, $3::text)"
        self.thread_namespaces = (
            f"SELECT checkpoint_ns FROM {s}.threads"
            " WHERE thread_id = $1::text AND head_id IS NOT NULL ORDER BY checkpoint_ns"
        )
        self.list_threads = (
            f"SELECT DISTINCT thread_id FROM {s}.threads WHERE head_id IS NOT NULL LIMIT $1::bigint"
        )

        # -- leases: $1 thread; acquire $2 owner, $3 ttl, $4 graph; renew $2 token, $3 ttl
        self.acquire_lease = (
            "SELECT token, expires_at, holder, holder_expires"
            f" FROM {s}.hitl_acquire($1::text, $2::text, $3::float8, $4::text)"
        )
        # ... then $5 namespace, $6 checkpoint id (NULL: the head); see migration 5.
        self.acquire_and_load = (
            f"SELECT * FROM {s}.hitl_acquire_and_load("
            "$1::text, $2::text, $3::float8, $4::text, $5::text, $6::text)"
        )
        # Group commit (migration 6): the same six columns as arrays, one row per element
        # with its 1-based `ord`.
        self.acquire_and_load_batch = (
            f"SELECT * FROM {s}.hitl_acquire_and_load_batch("
            "$1::text[], $2::text[], $3::float8[], $4::text[], $5::text[], $6::text[])"
        )
        self.renew_lease = (
            f"WITH up AS (UPDATE {s}.leases l SET expires_at = {s}.hitl_now() + $3::float8"
            "              WHERE l.thread_id = $1::text AND l.token = $2::bigint"
            "                AND NOT l.released"
            "             RETURNING l.owner, l.expires_at, l.graph)"
            " SELECT up.owner, up.expires_at, up.graph,"
            f"       (SELECT token FROM {s}.leases WHERE thread_id = $1::text) AS current"
            "  FROM (SELECT 1) AS one LEFT JOIN up ON true"
        )
        self.release_lease = f"SELECT {s}.hitl_release($1::text, $2::bigint)"
        self.release_batch = (
            f"SELECT ord, released FROM {s}.hitl_release_batch($1::text[], $2::bigint[])"
        )
        self.expired_leases = (
            f"SELECT thread_id, owner, token, expires_at, graph FROM {s}.leases"
            f" WHERE NOT released AND expires_at < {now}"
            "   AND ($1::text IS NULL OR graph = $1::text)"
            " ORDER BY expires_at, thread_id LIMIT $2::bigint"
        )

        # -- run queue
        self.enqueue = (
            f"WITH ins AS (INSERT INTO {s}.runs (id, queue, thread_id, payload, status, created_at,"
            "                                   owner, claim_expires, attempts, result, error)"
            "              VALUES ($1::text, $2::text, $3::text, $4::bytea, $5::text, $6::text,"
            "                      $7::text, $8::float8, $9::integer, $10::bytea, $11::text)"
            "              ON CONFLICT (id) DO NOTHING RETURNING queue)"
            f" SELECT {s}.hitl_notify_queue(ins.queue) FROM ins"
        )
        self.claim = f"SELECT {_RUN_COLUMNS} FROM {s}.hitl_claim($1::text, $2::text, $3::float8)"
        self.renew_claim = (
            f"UPDATE {s}.runs SET claim_expires = {s}.hitl_now() + $3::float8"
            " WHERE id = $1::text AND status = 'running' AND owner = $2::text RETURNING id"
        )
        # $2 owner (NULL: only a queued request, e.g. a cancel), $3 status, $4 result, $5 error.
        # Wakes workers of the request's queue and of every queue holding queued requests of its
        # thread (finishing a running request frees the thread for them).
        self.finish_request = (
            f"WITH up AS (UPDATE {s}.runs r"
            "                SET status = $3::text,"
            "                    owner = CASE WHEN $3::text = 'queued' THEN NULL ELSE r.owner END,"
            "                    claim_expires = NULL,"
            "                    attempts = CASE WHEN $3::text = 'queued'"
            "                               THEN greatest(r.attempts - 1, 0) ELSE r.attempts END,"
            "                    result = CASE WHEN $3::text = 'queued' THEN r.result"
            "                             ELSE $4::bytea END,"
            "                    error = CASE WHEN $3::text = 'queued' THEN r.error"
            "                            ELSE $5::text END"
            "              WHERE r.id = $1::text"
            "                AND CASE WHEN $2::text IS NULL THEN r.status = 'queued'"
            "                    ELSE r.status = 'running' AND r.owner = $2::text END"
            "             RETURNING r.queue, r.thread_id),"
            "      woken AS (SELECT up.queue FROM up"
            f"                UNION SELECT o.queue FROM {s}.runs o JOIN up"
            "                   ON o.thread_id = up.thread_id WHERE o.status = 'queued')"
            " SELECT (SELECT count(*) FROM up) AS changed,"
            f"       (SELECT sum({s}.hitl_notify_queue(w.queue)) FROM woken w) AS woken"
        )
        self.get_request = f"SELECT {_RUN_COLUMNS} FROM {s}.runs WHERE id = $1::text"
        # What hitl_claim would take (without taking it): wait_for_work's check after it
        # started listening.
        self.runnable = (
            f"SELECT EXISTS (SELECT 1 FROM {s}.runs r"
            "                WHERE r.queue = $1::text"
            "                  AND (r.status = 'queued' OR (r.status = 'running'"
            f"                       AND COALESCE(r.claim_expires, 0) < {now}))"
            f"                  AND NOT EXISTS (SELECT 1 FROM {s}.runs o"
            "                       WHERE o.thread_id = r.thread_id AND o.id <> r.id"
            "                         AND o.status = 'running'"
            f"                         AND COALESCE(o.claim_expires, 0) >= {now}))"
        )

    def list_inbox(self, *, thread: bool, node: bool, graph: bool, due: bool, after: bool) -> str:
        """Inbox entries in (created_at, thread_id, interrupt_id) order; `$1` is the limit.

        Only the filters whose flag is set appear (so each combination is its own prepared
        statement with a plan fitted to it), parameters numbered in this order: `thread`, `node`,
        `graph`, `due` (deadline before), `after` (three: the previous page's last triple,
        compared as a row so the `inbox_order` index bounds the scan).
        """
        return _inbox_sql(self.s, thread, node, graph, due, after)

    def list_requests(self, *, queue: bool, thread: bool, status: bool, before: bool) -> str:
        """Run requests newest first, by (created_at, id) descending; `$1` is the limit, then
        the filters whose flag is set, in this order (`before`: two, the previous page's last
        pair)."""
        return _runs_sql(self.s, queue, thread, status, before)

    def history(self, *, before: bool, exact: bool, loose: bool) -> str:
        """Newest first via a backward scan of the primary key; `$3` is the limit (NULL: all).

        Parameters: $1 thread, $2 ns, $3 limit, then, each only if its flag is set: `before`,
        the `exact` filter part (string and null values: jsonb containment `@>` is equality for
        those), the `loose` part (everything else, booleans already mapped to 0/1 by the caller),
        compared by `hitl_json_norm(value) = filter value`: Python `==` semantics.
        """
        return _history_sql(self.s, before, exact, loose)


_INBOX_TYPES = ("text[]", "text[]", "text[]", "bytea[]", "text[]", "float8[]", "bytea[]", "text[]")


def _inbox_args(first: int) -> str:
    """The eight inbox array parameters from `$first` on: id, ns, node, value, created_at,
    deadline, on_timeout, graph."""
    return ", ".join(f"${first + k}::{t}" for k, t in enumerate(_INBOX_TYPES))


_INBOX_COLUMNS = (
    "thread_id, interrupt_id, checkpoint_ns, node, value, created_at, deadline, on_timeout, graph"
)
_RUN_COLUMNS = (
    "id, queue, thread_id, payload, status, created_at, owner, claim_expires, attempts, result, "
    "error"
)


@cache
def _inbox_sql(s: str, thread: bool, node: bool, graph: bool, due: bool, after: bool) -> str:
    conditions: list[str] = []
    n = 1
    for flag, column in ((thread, "thread_id"), (node, "node"), (graph, "graph")):
        if flag:
            n += 1
            conditions.append(f"i.{column} = ${n}::text")
    if due:
        n += 1
        conditions.append(f"i.deadline < ${n}::float8")
    if after:
        conditions.append(
            f"(i.created_at, i.thread_id, i.interrupt_id) > (${n + 1}::text, ${n + 2}::text,"
            f" ${n + 3}::text)"
        )
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return (
        f"SELECT {_INBOX_COLUMNS} FROM {s}.inbox i{where}"
        " ORDER BY i.created_at, i.thread_id, i.interrupt_id LIMIT $1::bigint"
    )


@cache
def _runs_sql(s: str, queue: bool, thread: bool, status: bool, before: bool) -> str:
    conditions: list[str] = []
    n = 1
    for flag, column in ((queue, "queue"), (thread, "thread_id"), (status, "status")):
        if flag:
            n += 1
            conditions.append(f"r.{column} = ${n}::text")
    if before:
        conditions.append(f"(r.created_at, r.id) < (${n + 1}::text, ${n + 2}::text)")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return (
        f"SELECT {_RUN_COLUMNS} FROM {s}.runs r{where}"
        " ORDER BY r.created_at DESC, r.id DESC LIMIT $1::bigint"
    )


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
    return WITH_BLOBS_AND_WRITES.format(source=source, s=s) + " ORDER BY c.checkpoint_id DESC"
