"""Versioned schema migrations for the PostgreSQL driver.

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

from hitl_async_postgres._queries import WITH_BLOBS_AND_WRITES

__all__ = [
    "BATCHES_SQL",
    "CHAINS_SQL",
    "COMMIT_NO_REUSE_SQL",
    "COORDINATION_SQL",
    "FUNCTIONS_SQL",
    "MIGRATION_LOCK_KEY",
    "PLACEHOLDER",
    "TABLES_SQL",
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


TABLES_SQL = """
CREATE TABLE __SCHEMA__.threads (
    thread_id     text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    head_id       text COLLATE "C",
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thread_id, checkpoint_ns)
);

-- The primary key order (thread, ns, id) is also the history index: scanned backwards for
-- newest-first pages, with `checkpoint_id < before` as its range condition.
CREATE TABLE __SCHEMA__.checkpoints (
    thread_id        text COLLATE "C" NOT NULL,
    checkpoint_ns    text COLLATE "C" NOT NULL,
    checkpoint_id    text COLLATE "C" NOT NULL,
    parent_id        text COLLATE "C",
    created_at       text COLLATE "C" NOT NULL,
    channel_versions jsonb NOT NULL,
    header           bytea NOT NULL,
    metadata         jsonb NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);

CREATE TABLE __SCHEMA__.blobs (
    thread_id     text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    channel       text COLLATE "C" NOT NULL,
    version       text COLLATE "C" NOT NULL,
    data          bytea NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);

CREATE TABLE __SCHEMA__.writes (
    thread_id     text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    checkpoint_id text COLLATE "C" NOT NULL,
    task_id       text COLLATE "C" NOT NULL,
    idx           integer NOT NULL,
    channel       text NOT NULL,
    data          bytea NOT NULL,
    task_path     text NOT NULL DEFAULT '',
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
"""

# Stored functions: each is one round trip for the client, and runs its statements in READ
# COMMITTED with a fresh snapshot per statement (they are VOLATILE), after taking row locks.
FUNCTIONS_SQL = """
-- One superstep: check the head (row-locked), then write checkpoint, blobs, writes and the new
-- head. Returns ok=false and the actual head, having written nothing, when the head moved.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_commit(
    p_thread text, p_ns text, p_expected text,
    p_id text, p_parent text, p_created text, p_versions jsonb, p_header bytea, p_metadata jsonb,
    p_b_channel text[], p_b_version text[], p_b_data bytea[],
    p_w_task text[], p_w_idx integer[], p_w_channel text[], p_w_data bytea[], p_w_path text[],
    OUT ok boolean, OUT actual text)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    LOOP
        SELECT t.head_id INTO actual FROM __SCHEMA__.threads t
         WHERE t.thread_id = p_thread AND t.checkpoint_ns = p_ns
           FOR UPDATE;
        EXIT WHEN FOUND;
        IF p_expected IS NOT NULL THEN
            ok := false;
            actual := NULL;
            RETURN;
        END IF;
        -- First checkpoint of the namespace: create the head row (or find a concurrent one's),
        -- then go round to lock it and compare.
        INSERT INTO __SCHEMA__.threads (thread_id, checkpoint_ns, head_id)
        VALUES (p_thread, p_ns, NULL)
        ON CONFLICT DO NOTHING;
    END LOOP;

    IF actual IS DISTINCT FROM p_expected THEN
        ok := false;
        RETURN;
    END IF;

    INSERT INTO __SCHEMA__.checkpoints AS c
        (thread_id, checkpoint_ns, checkpoint_id, parent_id, created_at, channel_versions,
         header, metadata)
    VALUES (p_thread, p_ns, p_id, p_parent, p_created, p_versions, p_header, p_metadata)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE
        SET parent_id = EXCLUDED.parent_id, created_at = EXCLUDED.created_at,
            channel_versions = EXCLUDED.channel_versions, header = EXCLUDED.header,
            metadata = EXCLUDED.metadata;

    IF cardinality(p_b_channel) > 0 THEN
        INSERT INTO __SCHEMA__.blobs (thread_id, checkpoint_ns, channel, version, data)
        SELECT p_thread, p_ns, b.channel, b.version, b.data
          FROM unnest(p_b_channel, p_b_version, p_b_data) AS b(channel, version, data)
        ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO UPDATE
            SET data = EXCLUDED.data;
    END IF;

    IF cardinality(p_w_task) > 0 THEN
        DELETE FROM __SCHEMA__.writes w
         WHERE w.thread_id = p_thread AND w.checkpoint_ns = p_ns AND w.checkpoint_id = p_id;
        INSERT INTO __SCHEMA__.writes
            (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, data, task_path)
        SELECT p_thread, p_ns, p_id, w.task_id, w.idx, w.channel, w.data, w.task_path
          FROM unnest(p_w_task, p_w_idx, p_w_channel, p_w_data, p_w_path)
               AS w(task_id, idx, channel, data, task_path);
    END IF;

    UPDATE __SCHEMA__.threads t SET head_id = p_id, updated_at = now()
     WHERE t.thread_id = p_thread AND t.checkpoint_ns = p_ns;
    ok := true;
    actual := p_id;
END
$fn$;

-- Delete old checkpoints of one thread (see BaseSaver.prune). Locks the thread's head rows first
-- so no commit interleaves; returns the number of checkpoints deleted.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_prune(
    p_thread text, p_keep_last integer, p_cutoff text)
RETURNS integer
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    removed integer;
BEGIN
    PERFORM 1 FROM __SCHEMA__.threads t
      WHERE t.thread_id = p_thread ORDER BY t.checkpoint_ns FOR UPDATE;

    WITH ranked AS (
        SELECT c.checkpoint_ns, c.checkpoint_id,
               (c.checkpoint_id IS NOT DISTINCT FROM t.head_id)
               OR (p_keep_last IS NOT NULL AND row_number() OVER (
                       PARTITION BY c.checkpoint_ns ORDER BY c.checkpoint_id DESC
                   ) <= p_keep_last)
               OR (p_cutoff IS NOT NULL AND c.created_at > p_cutoff) AS keep
          FROM __SCHEMA__.checkpoints c
          LEFT JOIN __SCHEMA__.threads t
            ON t.thread_id = c.thread_id AND t.checkpoint_ns = c.checkpoint_ns
         WHERE c.thread_id = p_thread
    ), doomed AS (
        DELETE FROM __SCHEMA__.checkpoints c
         USING ranked r
         WHERE c.thread_id = p_thread AND c.checkpoint_ns = r.checkpoint_ns
           AND c.checkpoint_id = r.checkpoint_id AND NOT r.keep
        RETURNING c.checkpoint_ns, c.checkpoint_id
    ), gone_writes AS (
        DELETE FROM __SCHEMA__.writes w
         USING doomed d
         WHERE w.thread_id = p_thread AND w.checkpoint_ns = d.checkpoint_ns
           AND w.checkpoint_id = d.checkpoint_id
    )
    SELECT count(*) INTO removed FROM doomed;

    -- A new statement, so it sees the deletions above: drop blobs no remaining checkpoint uses.
    DELETE FROM __SCHEMA__.blobs b
     WHERE b.thread_id = p_thread
       AND NOT EXISTS (
           SELECT 1
             FROM __SCHEMA__.checkpoints c
            CROSS JOIN LATERAL jsonb_each_text(c.channel_versions) AS cv(channel, version)
            WHERE c.thread_id = p_thread AND c.checkpoint_ns = b.checkpoint_ns
              AND cv.channel = b.channel AND cv.version = b.version);
    RETURN removed;
END
$fn$;

-- Metadata filters compare like Python's `==`, where True == 1 == 1.0: map booleans to 0/1 at
-- every depth; jsonb equality then compares numbers by value and objects regardless of key order.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_json_norm(v jsonb)
RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
BEGIN
    CASE jsonb_typeof(v)
        WHEN 'boolean' THEN
            RETURN to_jsonb(CASE WHEN v = 'true'::jsonb THEN 1 ELSE 0 END);
        WHEN 'object' THEN
            RETURN COALESCE(
                (SELECT jsonb_object_agg(e.key, __SCHEMA__.hitl_json_norm(e.value))
                   FROM jsonb_each(v) AS e),
                '{}'::jsonb);
        WHEN 'array' THEN
            RETURN COALESCE(
                (SELECT jsonb_agg(__SCHEMA__.hitl_json_norm(e.value) ORDER BY e.ord)
                   FROM jsonb_array_elements(v) WITH ORDINALITY AS e(value, ord)),
                '[]'::jsonb);
        ELSE
            RETURN v;
    END CASE;
END
$fn$;

-- Remove a whole thread. Locks its head rows first, so a racing commit either lands before (and
-- is deleted too) or finds the head gone (conflict) - never a checkpoint without a head row.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_delete_thread(p_thread text)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM 1 FROM __SCHEMA__.threads t
      WHERE t.thread_id = p_thread ORDER BY t.checkpoint_ns FOR UPDATE;
    DELETE FROM __SCHEMA__.writes WHERE thread_id = p_thread;
    DELETE FROM __SCHEMA__.blobs WHERE thread_id = p_thread;
    DELETE FROM __SCHEMA__.checkpoints WHERE thread_id = p_thread;
    DELETE FROM __SCHEMA__.threads WHERE thread_id = p_thread;
END
$fn$;
"""

# Migration 3: a checkpoint id is never reused. Migration 2's `hitl_commit` upserted a checkpoint
# whose id was already stored (silently replacing it); this one refuses, writing nothing. The
# signature and result type are unchanged, so CREATE OR REPLACE swaps it in place. A duplicate id
# is reported as ok=false with actual = the expected head (a head conflict always has actual
# distinct from p_expected), which the client turns into a CheckpointConflictError of its own.
COMMIT_NO_REUSE_SQL = """
-- One superstep: check the head (row-locked), then write checkpoint, blobs, writes and the new
-- head, all or nothing. Returns ok=false and the actual head, having written nothing, when the
-- head moved; ok=false and actual = p_expected when checkpoint p_id is already stored.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_commit(
    p_thread text, p_ns text, p_expected text,
    p_id text, p_parent text, p_created text, p_versions jsonb, p_header bytea, p_metadata jsonb,
    p_b_channel text[], p_b_version text[], p_b_data bytea[],
    p_w_task text[], p_w_idx integer[], p_w_channel text[], p_w_data bytea[], p_w_path text[],
    OUT ok boolean, OUT actual text)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    LOOP
        SELECT t.head_id INTO actual FROM __SCHEMA__.threads t
         WHERE t.thread_id = p_thread AND t.checkpoint_ns = p_ns
           FOR UPDATE;
        EXIT WHEN FOUND;
        IF p_expected IS NOT NULL THEN
            ok := false;
            actual := NULL;
            RETURN;
        END IF;
        -- First checkpoint of the namespace: create the head row (or find a concurrent one's),
        -- then go round to lock it and compare.
        INSERT INTO __SCHEMA__.threads (thread_id, checkpoint_ns, head_id)
        VALUES (p_thread, p_ns, NULL)
        ON CONFLICT DO NOTHING;
    END LOOP;

    IF actual IS DISTINCT FROM p_expected THEN
        ok := false;
        RETURN;
    END IF;

    -- The checkpoint goes first: if its id is taken, nothing else has been written yet. (Commits
    -- of this namespace serialize on the head row lock held above.)
    INSERT INTO __SCHEMA__.checkpoints
        (thread_id, checkpoint_ns, checkpoint_id, parent_id, created_at, channel_versions,
         header, metadata)
    VALUES (p_thread, p_ns, p_id, p_parent, p_created, p_versions, p_header, p_metadata)
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING;
    IF NOT FOUND THEN
        ok := false;
        RETURN;
    END IF;

    IF cardinality(p_b_channel) > 0 THEN
        INSERT INTO __SCHEMA__.blobs (thread_id, checkpoint_ns, channel, version, data)
        SELECT p_thread, p_ns, b.channel, b.version, b.data
          FROM unnest(p_b_channel, p_b_version, p_b_data) AS b(channel, version, data)
        ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO UPDATE
            SET data = EXCLUDED.data;
    END IF;

    IF cardinality(p_w_task) > 0 THEN
        DELETE FROM __SCHEMA__.writes w
         WHERE w.thread_id = p_thread AND w.checkpoint_ns = p_ns AND w.checkpoint_id = p_id;
        INSERT INTO __SCHEMA__.writes
            (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, data, task_path)
        SELECT p_thread, p_ns, p_id, w.task_id, w.idx, w.channel, w.data, w.task_path
          FROM unnest(p_w_task, p_w_idx, p_w_channel, p_w_data, p_w_path)
               AS w(task_id, idx, channel, data, task_path);
    END IF;

    UPDATE __SCHEMA__.threads t SET head_id = p_id, updated_at = now()
     WHERE t.thread_id = p_thread AND t.checkpoint_ns = p_ns;
    ok := true;
    actual := p_id;
END
$fn$;
"""

# Migration 4: coordination. Leases with fencing tokens, the inbox index and the run queue, plus
# NOTIFY on every change. Idempotent (IF NOT EXISTS, CREATE OR REPLACE) like every migration, so a
# schema whose record of it was lost can run it again.
#
# Lock order, in every function that takes more than one: the thread's lease row, its head rows
# (`threads`), then its inbox lock (a transaction advisory lock, class 1751740002 = "hinb"),
# always last. Claims take a per-thread advisory lock of class 1751741813 = "hiru" and nothing
# else but the claimed rows.
COORDINATION_SQL = """
-- The store's clock in seconds since the epoch: leases, claims and deadlines all use it.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_now()
RETURNS double precision
LANGUAGE sql VOLATILE AS $fn$
    SELECT extract(epoch FROM clock_timestamp())::double precision
$fn$;

-- One lease row per thread (all namespaces). Released and expired leases stay, so the fencing
-- token only grows, across delete_thread too.
CREATE TABLE IF NOT EXISTS __SCHEMA__.leases (
    thread_id  text COLLATE "C" NOT NULL PRIMARY KEY,
    owner      text NOT NULL,
    token      bigint NOT NULL,
    expires_at double precision NOT NULL,
    graph      text COLLATE "C" NOT NULL DEFAULT '',
    released   boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS leases_expiry
    ON __SCHEMA__.leases (expires_at) WHERE NOT released;

-- Pending interrupts, replaced per thread by the commit that changes them: listing reads only
-- this table, so its cost follows the number pending, not the number of checkpoints.
CREATE TABLE IF NOT EXISTS __SCHEMA__.inbox (
    thread_id     text COLLATE "C" NOT NULL,
    interrupt_id  text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    node          text COLLATE "C" NOT NULL,
    value         bytea NOT NULL,
    created_at    text COLLATE "C" NOT NULL,
    deadline      double precision,
    on_timeout    bytea,
    graph         text COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (thread_id, interrupt_id)
);
CREATE INDEX IF NOT EXISTS inbox_order
    ON __SCHEMA__.inbox (created_at, thread_id, interrupt_id);
CREATE INDEX IF NOT EXISTS inbox_deadline
    ON __SCHEMA__.inbox (deadline) WHERE deadline IS NOT NULL;

CREATE TABLE IF NOT EXISTS __SCHEMA__.runs (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,
    queue         text COLLATE "C" NOT NULL,
    thread_id     text COLLATE "C" NOT NULL,
    payload       bytea NOT NULL,
    status        text COLLATE "C" NOT NULL DEFAULT 'queued',
    created_at    text COLLATE "C" NOT NULL,
    owner         text,
    claim_expires double precision,
    attempts      integer NOT NULL DEFAULT 0,
    result        bytea,
    error         text
);
-- Claim order within a queue and status; and the requests of a thread still to run or running
-- (the "one running request per thread" test).
CREATE INDEX IF NOT EXISTS runs_queue
    ON __SCHEMA__.runs (queue, status, created_at, id);
CREATE INDEX IF NOT EXISTS runs_active_thread
    ON __SCHEMA__.runs (thread_id) WHERE status IN ('queued', 'running');

-- Wake the schema's listeners: a thread changed / a queue may have work. Payloads over the
-- NOTIFY limit become '' ("any"). Delivered when the transaction commits, never before.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_notify_change(p_thread text)
RETURNS integer
LANGUAGE sql VOLATILE AS $fn$
    SELECT pg_notify(__CHANGE_CHANNEL__,
                     CASE WHEN octet_length(p_thread) < 8000 THEN p_thread ELSE '' END);
    SELECT 1;
$fn$;

CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_notify_queue(p_queue text)
RETURNS integer
LANGUAGE sql VOLATILE AS $fn$
    SELECT pg_notify(__QUEUE_CHANNEL__,
                     CASE WHEN octet_length(p_queue) < 8000 THEN p_queue ELSE '' END);
    SELECT 1;
$fn$;

-- The fencing check: is `p_token` still the thread's lease, not released, not expired? Share-
-- locks the lease row, so a take-over (an UPDATE of that row) waits until this write commits
-- and then finds the lease as this write left it.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_fence(
    p_thread text, p_token bigint, OUT held boolean, OUT current bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_released boolean;
    v_expires double precision;
BEGIN
    SELECT l.token, l.released, l.expires_at INTO current, v_released, v_expires
      FROM __SCHEMA__.leases l
     WHERE l.thread_id = p_thread
       FOR SHARE;
    held := FOUND AND current = p_token AND NOT v_released
            AND v_expires >= __SCHEMA__.hitl_now();
END
$fn$;

-- Replace the thread's inbox entries (every namespace). Replacements of one thread serialize on
-- the inbox lock; the DELETE then runs with a snapshot taken after it.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_set_inbox(
    p_thread text, p_id text[], p_ns text[], p_node text[], p_value bytea[],
    p_created text[], p_deadline double precision[], p_timeout bytea[], p_graph text[])
RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(1751740002, hashtext('__SCHEMA__.' || p_thread));
    DELETE FROM __SCHEMA__.inbox i WHERE i.thread_id = p_thread;
    INSERT INTO __SCHEMA__.inbox
        (thread_id, interrupt_id, checkpoint_ns, node, value, created_at, deadline, on_timeout,
         graph)
    SELECT p_thread, e.id, e.ns, e.node, e.value, e.created, e.deadline, e.timeout, e.graph
      FROM unnest(p_id, p_ns, p_node, p_value, p_created, p_deadline, p_timeout, p_graph)
           AS e(id, ns, node, value, created, deadline, timeout, graph);
END
$fn$;

-- The commit of a coordinated superstep, still one round trip: the fencing check (p_lease NULL:
-- none), then the head-checked commit of migration 3 (the 17-argument `hitl_commit`, kept for
-- clients of earlier versions), then the inbox (p_i_id NULL: unchanged) and the notification.
-- lease_ok=false: the lease is lost and nothing was written; otherwise ok/actual as before.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_commit(
    p_thread text, p_ns text, p_expected text,
    p_id text, p_parent text, p_created text, p_versions jsonb, p_header bytea, p_metadata jsonb,
    p_b_channel text[], p_b_version text[], p_b_data bytea[],
    p_w_task text[], p_w_idx integer[], p_w_channel text[], p_w_data bytea[], p_w_path text[],
    p_lease bigint,
    p_i_id text[], p_i_ns text[], p_i_node text[], p_i_value bytea[], p_i_created text[],
    p_i_deadline double precision[], p_i_timeout bytea[], p_i_graph text[],
    OUT ok boolean, OUT actual text, OUT lease_ok boolean, OUT lease_current bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    lease_ok := true;
    IF p_lease IS NOT NULL THEN
        SELECT f.held, f.current INTO lease_ok, lease_current
          FROM __SCHEMA__.hitl_fence(p_thread, p_lease) AS f;
        IF NOT lease_ok THEN
            ok := false;
            RETURN;
        END IF;
    END IF;

    SELECT c.ok, c.actual INTO ok, actual
      FROM __SCHEMA__.hitl_commit(
           p_thread, p_ns, p_expected, p_id, p_parent, p_created, p_versions, p_header,
           p_metadata, p_b_channel, p_b_version, p_b_data,
           p_w_task, p_w_idx, p_w_channel, p_w_data, p_w_path) AS c;
    IF NOT ok THEN
        RETURN;  -- nothing was written
    END IF;

    IF p_i_id IS NOT NULL THEN
        PERFORM __SCHEMA__.hitl_set_inbox(
            p_thread, p_i_id, p_i_ns, p_i_node, p_i_value, p_i_created, p_i_deadline,
            p_i_timeout, p_i_graph);
    END IF;
    PERFORM __SCHEMA__.hitl_notify_change(p_thread);
END
$fn$;

-- Pending writes (upsert by task id and idx), fenced and with the inbox like hitl_commit.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_put_writes(
    p_thread text, p_ns text, p_id text,
    p_w_task text[], p_w_idx integer[], p_w_channel text[], p_w_data bytea[], p_w_path text[],
    p_lease bigint,
    p_i_id text[], p_i_ns text[], p_i_node text[], p_i_value bytea[], p_i_created text[],
    p_i_deadline double precision[], p_i_timeout bytea[], p_i_graph text[],
    OUT lease_ok boolean, OUT lease_current bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    lease_ok := true;
    IF p_lease IS NOT NULL THEN
        SELECT f.held, f.current INTO lease_ok, lease_current
          FROM __SCHEMA__.hitl_fence(p_thread, p_lease) AS f;
        IF NOT lease_ok THEN
            RETURN;
        END IF;
    END IF;

    IF cardinality(p_w_task) > 0 THEN
        INSERT INTO __SCHEMA__.writes AS t
            (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, data, task_path)
        SELECT p_thread, p_ns, p_id, w.task_id, w.idx, w.channel, w.data, w.task_path
          FROM unnest(p_w_task, p_w_idx, p_w_channel, p_w_data, p_w_path)
               AS w(task_id, idx, channel, data, task_path)
        ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE
            SET channel = EXCLUDED.channel, data = EXCLUDED.data,
                task_path = EXCLUDED.task_path;
    END IF;

    IF p_i_id IS NOT NULL THEN
        PERFORM __SCHEMA__.hitl_set_inbox(
            p_thread, p_i_id, p_i_ns, p_i_node, p_i_value, p_i_created, p_i_deadline,
            p_i_timeout, p_i_graph);
    END IF;
    PERFORM __SCHEMA__.hitl_notify_change(p_thread);
END
$fn$;

-- Remove a whole thread: checkpoints, blobs, writes, head rows and inbox entries. Its lease is
-- released (not deleted: the token keeps growing), which fences out its holder.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_delete_thread(p_thread text)
RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    UPDATE __SCHEMA__.leases l SET released = true WHERE l.thread_id = p_thread;
    PERFORM 1 FROM __SCHEMA__.threads t
      WHERE t.thread_id = p_thread ORDER BY t.checkpoint_ns FOR UPDATE;
    PERFORM pg_advisory_xact_lock(1751740002, hashtext('__SCHEMA__.' || p_thread));
    DELETE FROM __SCHEMA__.inbox WHERE thread_id = p_thread;
    DELETE FROM __SCHEMA__.writes WHERE thread_id = p_thread;
    DELETE FROM __SCHEMA__.blobs WHERE thread_id = p_thread;
    DELETE FROM __SCHEMA__.checkpoints WHERE thread_id = p_thread;
    DELETE FROM __SCHEMA__.threads WHERE thread_id = p_thread;
    PERFORM __SCHEMA__.hitl_notify_change(p_thread);
END
$fn$;

-- Claim the oldest runnable request of a queue: queued, or running with an expired claim.
-- Skipped: a request whose thread has a running request with a live claim (in any queue), and
-- one with an older queued or running request of its thread in the same queue (runs of a thread
-- start in order, even while that older one is being claimed by someone else). Candidates come
-- from index-ordered scans with FOR UPDATE SKIP LOCKED, so concurrent claimers never take the
-- same row. Two claimers could still take requests of one thread from two queues (neither sees
-- the other's uncommitted claim), so a claim also takes the thread's transaction lock and
-- re-checks the thread in a fresh snapshot; a thread locked by another claimer is skipped.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_claim(
    p_queue text, p_owner text, p_ttl double precision)
RETURNS SETOF __SCHEMA__.runs
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_now double precision;
    v_pick __SCHEMA__.runs;
    v_expired __SCHEMA__.runs;
    v_skip text[] := '{}';
BEGIN
    LOOP
        v_now := __SCHEMA__.hitl_now();
        SELECT r.* INTO v_pick
          FROM __SCHEMA__.runs r
         WHERE r.queue = p_queue AND r.status = 'queued' AND r.id <> ALL (v_skip)
           AND NOT EXISTS (
               SELECT 1 FROM __SCHEMA__.runs o
                WHERE o.thread_id = r.thread_id AND o.id <> r.id
                  AND o.status IN ('queued', 'running')
                  AND ((o.status = 'running' AND COALESCE(o.claim_expires, 0) >= v_now)
                       OR (o.queue = r.queue AND (o.created_at, o.id) < (r.created_at, r.id))))
         ORDER BY r.created_at, r.id
         LIMIT 1
           FOR UPDATE OF r SKIP LOCKED;
        -- A running request whose claim expired goes first when it is older.
        SELECT r.* INTO v_expired
          FROM __SCHEMA__.runs r
         WHERE r.queue = p_queue AND r.status = 'running'
           AND COALESCE(r.claim_expires, 0) < v_now AND r.id <> ALL (v_skip)
           AND (v_pick.id IS NULL OR (r.created_at, r.id) < (v_pick.created_at, v_pick.id))
           AND NOT EXISTS (
               SELECT 1 FROM __SCHEMA__.runs o
                WHERE o.thread_id = r.thread_id AND o.id <> r.id
                  AND o.status IN ('queued', 'running')
                  AND ((o.status = 'running' AND COALESCE(o.claim_expires, 0) >= v_now)
                       OR (o.queue = r.queue AND (o.created_at, o.id) < (r.created_at, r.id))))
         ORDER BY r.created_at, r.id
         LIMIT 1
           FOR UPDATE OF r SKIP LOCKED;
        IF FOUND THEN
            v_pick := v_expired;
        END IF;
        IF v_pick.id IS NULL THEN
            RETURN;  -- nothing runnable
        END IF;

        IF pg_try_advisory_xact_lock(1751741813, hashtext('__SCHEMA__.' || v_pick.thread_id)) THEN
            -- A statement of its own: its snapshot sees claims committed before the lock.
            IF NOT EXISTS (
                SELECT 1 FROM __SCHEMA__.runs o
                 WHERE o.thread_id = v_pick.thread_id AND o.id <> v_pick.id
                   AND o.status = 'running' AND COALESCE(o.claim_expires, 0) >= v_now) THEN
                RETURN QUERY
                    UPDATE __SCHEMA__.runs r
                       SET status = 'running', owner = p_owner, claim_expires = v_now + p_ttl,
                           attempts = r.attempts + 1
                     WHERE r.id = v_pick.id
                    RETURNING r.*;
                RETURN;
            END IF;
        END IF;
        v_skip := v_skip || v_pick.id;
    END LOOP;
END
$fn$;
"""

# Migration 5: one round trip at each end of a run. `hitl_commit_many` writes a chain of
# checkpoints (durability="async" batches, and the end of every run, with the lease release);
# `hitl_acquire_and_load` takes the lease and loads the checkpoint the run starts from. Both reuse
# the earlier functions: the fence, the 17-argument `hitl_commit` per checkpoint, the inbox
# replacement and the notification. The lease upsert and release move into functions of their own
# (`hitl_acquire`, `hitl_release`), which `acquire_lease`/`release_lease` call too.
CHAINS_SQL = """
-- Take the thread's lease if it is free, released or expired: token + 1 (1 for a new row).
-- Otherwise token is NULL and holder/holder_expires name the live holder (NULL if none is left
-- after three attempts: a lease released or expired just after the upsert looked is retried).
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_acquire(
    p_thread text, p_owner text, p_ttl double precision, p_graph text,
    OUT token bigint, OUT expires_at double precision, OUT holder text,
    OUT holder_expires double precision)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    v_released boolean;
    v_expired boolean;
BEGIN
    FOR attempt IN 1..3 LOOP
        INSERT INTO __SCHEMA__.leases AS l
            (thread_id, owner, token, expires_at, graph, released)
        VALUES (p_thread, p_owner, 1, __SCHEMA__.hitl_now() + p_ttl, p_graph, false)
        ON CONFLICT (thread_id) DO UPDATE
            SET owner = EXCLUDED.owner, token = l.token + 1,
                expires_at = __SCHEMA__.hitl_now() + p_ttl, graph = EXCLUDED.graph,
                released = false
          WHERE l.released OR l.expires_at < __SCHEMA__.hitl_now()
        RETURNING l.token, l.expires_at INTO token, expires_at;
        IF FOUND THEN
            RETURN;
        END IF;
        -- Taken: a statement of its own, so it sees the holder as it is now.
        SELECT l.owner, l.expires_at, l.released, l.expires_at < __SCHEMA__.hitl_now()
          INTO holder, holder_expires, v_released, v_expired
          FROM __SCHEMA__.leases l
         WHERE l.thread_id = p_thread;
        EXIT WHEN FOUND AND NOT v_released AND NOT v_expired;
        holder := NULL;
        holder_expires := NULL;
    END LOOP;
END
$fn$;

-- Give the lease up if `p_token` is still the thread's token; true (and a NOTIFY) if it was.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_release(p_thread text, p_token bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    UPDATE __SCHEMA__.leases l SET released = true
     WHERE l.thread_id = p_thread AND l.token = p_token;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM __SCHEMA__.hitl_notify_change(p_thread);
    RETURN true;
END
$fn$;

-- acquire_lease then load, one call. The load is a statement of its own after the lease is
-- taken, so it sees a commit of the previous holder that the take-over had to wait for (one
-- statement would read with a snapshot from before that wait). One row: token NULL and the
-- holder when the thread is busy; otherwise the lease, and the checkpoint columns (as `load`)
-- of `p_id`, or of the head when it is NULL, or NULLs when there is no such checkpoint.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_acquire_and_load(
    p_thread text, p_owner text, p_ttl double precision, p_graph text, p_ns text, p_id text)
RETURNS TABLE (
    token bigint, expires_at double precision, holder text, holder_expires double precision,
    checkpoint_id text, parent_id text, created_at text, channel_versions text, header bytea,
    metadata text, blob_channels text[], blob_data bytea[], task_ids text[], idxs integer[],
    write_channels text[], write_data bytea[], paths text[])
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    v_lease record;
BEGIN
    SELECT a.token, a.expires_at, a.holder, a.holder_expires INTO v_lease
      FROM __SCHEMA__.hitl_acquire(p_thread, p_owner, p_ttl, p_graph) AS a;
    IF v_lease.token IS NOT NULL THEN
        RETURN QUERY
            SELECT v_lease.token, v_lease.expires_at, NULL::text, NULL::double precision, ld.*
              FROM (__LOAD__) AS ld;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    token := v_lease.token;
    expires_at := v_lease.expires_at;
    holder := v_lease.holder;
    holder_expires := v_lease.holder_expires;
    RETURN NEXT;
END
$fn$;

-- A chain of commits of one namespace in one call, all or nothing: the fence once (p_lease NULL:
-- none), then every check before any write - the stored head (row-locked) is p_expected[1], each
-- later p_expected[k] is p_id[k - 1], no id is stored already or repeated - then each checkpoint
-- by the 17-argument `hitl_commit` in order, the inbox (p_i_id NULL: unchanged), the release of
-- the lease (p_release) and one NOTIFY. Checkpoint k's blobs are elements p_b_end[k - 1] + 1 ..
-- p_b_end[k] of the blob arrays (p_b_end[0] counts as 0), its writes likewise by p_w_end.
-- lease_ok=false: the lease is lost. ok=false: commit number `failed` (0-based) would have been
-- refused one by one, with `actual` the head it found (= its expected head: its id is taken).
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_commit_many(
    p_thread text, p_ns text, p_lease bigint, p_release boolean,
    p_expected text[], p_id text[], p_parent text[], p_created text[], p_versions jsonb[],
    p_header bytea[], p_metadata jsonb[],
    p_b_end integer[], p_b_channel text[], p_b_version text[], p_b_data bytea[],
    p_w_end integer[], p_w_task text[], p_w_idx integer[], p_w_channel text[], p_w_data bytea[],
    p_w_path text[],
    p_i_id text[], p_i_ns text[], p_i_node text[], p_i_value bytea[], p_i_created text[],
    p_i_deadline double precision[], p_i_timeout bytea[], p_i_graph text[],
    OUT ok boolean, OUT failed integer, OUT actual text, OUT lease_ok boolean,
    OUT lease_current bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n integer := COALESCE(cardinality(p_id), 0);
    v_stored text[];
    v_b integer := 1;
    v_w integer := 1;
BEGIN
    lease_ok := true;
    ok := false;
    IF p_lease IS NOT NULL THEN
        IF p_release THEN
            -- The release updates the lease row: lock it that way now (lock order: lease row
            -- first), rather than upgrade the fence's share lock after the head rows.
            PERFORM 1 FROM __SCHEMA__.leases l WHERE l.thread_id = p_thread FOR NO KEY UPDATE;
        END IF;
        SELECT f.held, f.current INTO lease_ok, lease_current
          FROM __SCHEMA__.hitl_fence(p_thread, p_lease) AS f;
        IF NOT lease_ok THEN
            RETURN;
        END IF;
    END IF;

    IF n > 0 THEN
        SELECT t.head_id INTO actual FROM __SCHEMA__.threads t
         WHERE t.thread_id = p_thread AND t.checkpoint_ns = p_ns
           FOR UPDATE;
        IF actual IS DISTINCT FROM p_expected[1] THEN
            failed := 0;
            RETURN;
        END IF;
        SELECT array_agg(c.checkpoint_id) INTO v_stored FROM __SCHEMA__.checkpoints c
         WHERE c.thread_id = p_thread AND c.checkpoint_ns = p_ns AND c.checkpoint_id = ANY (p_id);
        FOR k IN 1..n LOOP
            IF k > 1 AND p_expected[k] IS DISTINCT FROM p_id[k - 1] THEN
                failed := k - 1;
                actual := p_id[k - 1];
                RETURN;
            END IF;
            IF p_id[k] = ANY (v_stored) OR p_id[k] = ANY (p_id[1:k - 1]) THEN
                failed := k - 1;
                actual := p_expected[k];
                RETURN;
            END IF;
        END LOOP;

        FOR k IN 1..n LOOP
            SELECT c.ok, c.actual INTO ok, actual
              FROM __SCHEMA__.hitl_commit(
                   p_thread, p_ns, p_expected[k], p_id[k], p_parent[k], p_created[k],
                   p_versions[k], p_header[k], p_metadata[k],
                   COALESCE(p_b_channel[v_b:p_b_end[k]], '{}'),
                   COALESCE(p_b_version[v_b:p_b_end[k]], '{}'),
                   COALESCE(p_b_data[v_b:p_b_end[k]], '{}'),
                   COALESCE(p_w_task[v_w:p_w_end[k]], '{}'),
                   COALESCE(p_w_idx[v_w:p_w_end[k]], '{}'),
                   COALESCE(p_w_channel[v_w:p_w_end[k]], '{}'),
                   COALESCE(p_w_data[v_w:p_w_end[k]], '{}'),
                   COALESCE(p_w_path[v_w:p_w_end[k]], '{}')) AS c;
            IF NOT ok THEN
                IF k = 1 THEN
                    failed := 0;  -- a racing first commit of the namespace: nothing written
                    RETURN;
                END IF;
                -- Cannot happen (the chain was checked under the head row lock); never leave
                -- part of it behind.
                RAISE EXCEPTION 'hitl_commit_many: checkpoint % of thread % refused after the '
                                'chain was checked', p_id[k], p_thread;
            END IF;
            v_b := p_b_end[k] + 1;
            v_w := p_w_end[k] + 1;
        END LOOP;
    END IF;

    IF p_i_id IS NOT NULL THEN
        PERFORM __SCHEMA__.hitl_set_inbox(
            p_thread, p_i_id, p_i_ns, p_i_node, p_i_value, p_i_created, p_i_deadline,
            p_i_timeout, p_i_graph);
    END IF;
    IF p_release AND p_lease IS NOT NULL THEN
        PERFORM __SCHEMA__.hitl_release(p_thread, p_lease);
    END IF;
    PERFORM __SCHEMA__.hitl_notify_change(p_thread);
    ok := true;
    failed := NULL;
END
$fn$;
""".replace(
    "__LOAD__",
    WITH_BLOBS_AND_WRITES.format(
        s=PLACEHOLDER,
        source=(
            f"SELECT k.* FROM {PLACEHOLDER}.checkpoints k"
            " WHERE k.thread_id = p_thread AND k.checkpoint_ns = p_ns"
            "   AND k.checkpoint_id = COALESCE(p_id, ("
            f"      SELECT h.head_id FROM {PLACEHOLDER}.threads h"
            "        WHERE h.thread_id = p_thread AND h.checkpoint_ns = p_ns))"
        ),
    ),
)

# Migration 6: group commit. Concurrent calls of many threads (runs of one process) share one
# round trip and one transaction: a batch of `hitl_acquire_and_load`, `hitl_commit_many`,
# `hitl_put_writes` or `hitl_release` calls, each element by that function, so every request
# keeps its exact semantics; a request that is refused (busy, conflict, lost lease) is a row,
# not an error, and does not affect the others. The client sorts a batch by thread id and
# namespace: every batch then takes its row locks in one global order (and within a thread in
# the usual order: lease row, head rows, inbox lock), so two batches cannot deadlock on each
# other. A batch that raises anyway is rolled back as a whole, and the client sends its requests
# one by one.
#
# With many requests per transaction, the server's work per request is what is left, so this
# migration also makes that cheaper, with the same results: `hitl_commit_many` writes a chain
# with one statement per table instead of the 17-argument `hitl_commit` per checkpoint (which
# stays, for the single `commit`), checks the fence inline and notifies once; the notify
# functions become plpgsql, whose plans are cached (a multi-statement SQL function is parsed and
# planned again at every call).
BATCHES_SQL = """
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_notify_change(p_thread text)
RETURNS integer
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM pg_notify(__CHANGE_CHANNEL__,
                      CASE WHEN octet_length(p_thread) < 8000 THEN p_thread ELSE '' END);
    RETURN 1;
END
$fn$;

CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_notify_queue(p_queue text)
RETURNS integer
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM pg_notify(__QUEUE_CHANNEL__,
                      CASE WHEN octet_length(p_queue) < 8000 THEN p_queue ELSE '' END);
    RETURN 1;
END
$fn$;

-- As in migration 5 (same arguments and results, all or nothing): the fence once, every check
-- of the chain before any write, then the chain, the inbox, the release and one NOTIFY. The
-- fence is `hitl_fence` inline (the lease row locked for an update when it is to be released:
-- lock order, lease row first). The chain is written as the 17-argument `hitl_commit` one by
-- one would write it, but one statement per table: the head row (created for the first
-- checkpoint of a namespace, then locked and compared again: a racing first commit is
-- failed = 0), all checkpoints, the blobs (a key given twice: the later checkpoint's data), each
-- checkpoint's writes replacing its stored ones, and the head.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_commit_many(
    p_thread text, p_ns text, p_lease bigint, p_release boolean,
    p_expected text[], p_id text[], p_parent text[], p_created text[], p_versions jsonb[],
    p_header bytea[], p_metadata jsonb[],
    p_b_end integer[], p_b_channel text[], p_b_version text[], p_b_data bytea[],
    p_w_end integer[], p_w_task text[], p_w_idx integer[], p_w_channel text[], p_w_data bytea[],
    p_w_path text[],
    p_i_id text[], p_i_ns text[], p_i_node text[], p_i_value bytea[], p_i_created text[],
    p_i_deadline double precision[], p_i_timeout bytea[], p_i_graph text[],
    OUT ok boolean, OUT failed integer, OUT actual text, OUT lease_ok boolean,
    OUT lease_current bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n integer := COALESCE(cardinality(p_id), 0);
    v_stored text[];
    v_found boolean;
    v_released boolean;
    v_expires double precision;
    v_rows integer;
    v_w integer := 1;
BEGIN
    lease_ok := true;
    ok := false;
    IF p_lease IS NOT NULL THEN
        IF p_release THEN
            SELECT l.token, l.released, l.expires_at INTO lease_current, v_released, v_expires
              FROM __SCHEMA__.leases l
             WHERE l.thread_id = p_thread
               FOR NO KEY UPDATE;
        ELSE
            SELECT l.token, l.released, l.expires_at INTO lease_current, v_released, v_expires
              FROM __SCHEMA__.leases l
             WHERE l.thread_id = p_thread
               FOR SHARE;
        END IF;
        lease_ok := FOUND AND lease_current = p_lease AND NOT v_released
                    AND v_expires >= __SCHEMA__.hitl_now();
        IF NOT lease_ok THEN
            RETURN;
        END IF;
    END IF;

    IF n > 0 THEN
        SELECT t.head_id INTO actual FROM __SCHEMA__.threads t
         WHERE t.thread_id = p_thread AND t.checkpoint_ns = p_ns
           FOR UPDATE;
        v_found := FOUND;
        IF actual IS DISTINCT FROM p_expected[1] THEN
            failed := 0;
            RETURN;
        END IF;
        SELECT array_agg(c.checkpoint_id) INTO v_stored FROM __SCHEMA__.checkpoints c
         WHERE c.thread_id = p_thread AND c.checkpoint_ns = p_ns AND c.checkpoint_id = ANY (p_id);
        FOR k IN 1..n LOOP
            IF k > 1 AND p_expected[k] IS DISTINCT FROM p_id[k - 1] THEN
                failed := k - 1;
                actual := p_id[k - 1];
                RETURN;
            END IF;
            IF p_id[k] = ANY (v_stored) OR p_id[k] = ANY (p_id[1:k - 1]) THEN
                failed := k - 1;
                actual := p_expected[k];
                RETURN;
            END IF;
        END LOOP;

        IF NOT v_found THEN
            -- First checkpoint of the namespace: create the head row (or find a concurrent
            -- one's), then lock it and compare again.
            LOOP
                INSERT INTO __SCHEMA__.threads (thread_id, checkpoint_ns, head_id)
                VALUES (p_thread, p_ns, NULL)
                ON CONFLICT DO NOTHING;
                SELECT t.head_id INTO actual FROM __SCHEMA__.threads t
                 WHERE t.thread_id = p_thread AND t.checkpoint_ns = p_ns
                   FOR UPDATE;
                EXIT WHEN FOUND;
            END LOOP;
            IF actual IS NOT NULL THEN
                failed := 0;  -- a racing first commit of the namespace: nothing written
                RETURN;
            END IF;
        END IF;

        INSERT INTO __SCHEMA__.checkpoints
            (thread_id, checkpoint_ns, checkpoint_id, parent_id, created_at, channel_versions,
             header, metadata)
        SELECT p_thread, p_ns, c.id, c.parent, c.created, c.versions, c.header, c.metadata
          FROM unnest(p_id, p_parent, p_created, p_versions, p_header, p_metadata)
               AS c(id, parent, created, versions, header, metadata)
        ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING;
        GET DIAGNOSTICS v_rows = ROW_COUNT;
        IF v_rows <> n THEN
            -- Cannot happen (the ids were checked under the head row lock); never leave part
            -- of the chain behind.
            RAISE EXCEPTION 'hitl_commit_many: a checkpoint id of thread % was stored after '
                            'the chain was checked', p_thread;
        END IF;

        IF COALESCE(p_b_end[n], 0) > 0 THEN
            INSERT INTO __SCHEMA__.blobs (thread_id, checkpoint_ns, channel, version, data)
            SELECT DISTINCT ON (b.channel, b.version) p_thread, p_ns, b.channel, b.version, b.data
              FROM unnest(p_b_channel[1:p_b_end[n]], p_b_version[1:p_b_end[n]],
                          p_b_data[1:p_b_end[n]]) WITH ORDINALITY AS b(channel, version, data, i)
             ORDER BY b.channel, b.version, b.i DESC
            ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO UPDATE
                SET data = EXCLUDED.data;
        END IF;

        FOR k IN 1..n LOOP
            IF p_w_end[k] >= v_w THEN
                DELETE FROM __SCHEMA__.writes w
                 WHERE w.thread_id = p_thread AND w.checkpoint_ns = p_ns
                   AND w.checkpoint_id = p_id[k];
                INSERT INTO __SCHEMA__.writes
                    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, data,
                     task_path)
                SELECT p_thread, p_ns, p_id[k], w.task_id, w.idx, w.channel, w.data, w.task_path
                  FROM unnest(p_w_task[v_w:p_w_end[k]], p_w_idx[v_w:p_w_end[k]],
                              p_w_channel[v_w:p_w_end[k]], p_w_data[v_w:p_w_end[k]],
                              p_w_path[v_w:p_w_end[k]])
                       AS w(task_id, idx, channel, data, task_path);
                v_w := p_w_end[k] + 1;
            END IF;
        END LOOP;

        UPDATE __SCHEMA__.threads t SET head_id = p_id[n], updated_at = now()
         WHERE t.thread_id = p_thread AND t.checkpoint_ns = p_ns;
        actual := p_id[n];
    END IF;

    IF p_i_id IS NOT NULL THEN
        PERFORM __SCHEMA__.hitl_set_inbox(
            p_thread, p_i_id, p_i_ns, p_i_node, p_i_value, p_i_created, p_i_deadline,
            p_i_timeout, p_i_graph);
    END IF;
    IF p_release AND p_lease IS NOT NULL THEN
        UPDATE __SCHEMA__.leases l SET released = true
         WHERE l.thread_id = p_thread AND l.token = p_lease;
    END IF;
    PERFORM __SCHEMA__.hitl_notify_change(p_thread);
    ok := true;
    failed := NULL;
END
$fn$;

-- Many acquire_and_load calls in one: row k is `hitl_acquire_and_load` of element k (each load
-- still a statement after its own lease is taken), with `ord` = k.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_acquire_and_load_batch(
    p_thread text[], p_owner text[], p_ttl double precision[], p_graph text[], p_ns text[],
    p_id text[])
RETURNS TABLE (
    ord integer,
    token bigint, expires_at double precision, holder text, holder_expires double precision,
    checkpoint_id text, parent_id text, created_at text, channel_versions text, header bytea,
    metadata text, blob_channels text[], blob_data bytea[], task_ids text[], idxs integer[],
    write_channels text[], write_data bytea[], paths text[])
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    FOR k IN 1..COALESCE(cardinality(p_thread), 0) LOOP
        RETURN QUERY
            SELECT k, a.*
              FROM __SCHEMA__.hitl_acquire_and_load(
                   p_thread[k], p_owner[k], p_ttl[k], p_graph[k], p_ns[k], p_id[k]) AS a;
    END LOOP;
END
$fn$;

-- Many put_writes calls in one: per request r its thread, namespace, checkpoint id, lease token
-- (NULL: unfenced), the end of its elements in the write arrays and the inbox arrays, p_i_set[r]
-- false for an inbox left as it is. Row r is `hitl_put_writes` of request r, with `ord` = r.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_put_writes_batch(
    p_thread text[], p_ns text[], p_id text[], p_lease bigint[], p_w_end integer[],
    p_i_set boolean[], p_i_end integer[],
    p_w_task text[], p_w_idx integer[], p_w_channel text[], p_w_data bytea[], p_w_path text[],
    p_i_id text[], p_i_ns text[], p_i_node text[], p_i_value bytea[], p_i_created text[],
    p_i_deadline double precision[], p_i_timeout bytea[], p_i_graph text[])
RETURNS TABLE (ord integer, lease_ok boolean, lease_current bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    v_w integer := 1;
    v_i integer := 1;
    v_set boolean;
    v_res record;
BEGIN
    FOR r IN 1..COALESCE(cardinality(p_thread), 0) LOOP
        v_set := p_i_set[r];
        v_res := __SCHEMA__.hitl_put_writes(
            p_thread[r], p_ns[r], p_id[r],
            COALESCE(p_w_task[v_w:p_w_end[r]], '{}'), COALESCE(p_w_idx[v_w:p_w_end[r]], '{}'),
            COALESCE(p_w_channel[v_w:p_w_end[r]], '{}'), COALESCE(p_w_data[v_w:p_w_end[r]], '{}'),
            COALESCE(p_w_path[v_w:p_w_end[r]], '{}'),
            p_lease[r],
            CASE WHEN v_set THEN COALESCE(p_i_id[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_ns[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_node[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_value[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_created[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_deadline[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_timeout[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_graph[v_i:p_i_end[r]], '{}') END);
        ord := r;
        lease_ok := v_res.lease_ok;
        lease_current := v_res.lease_current;
        RETURN NEXT;
        v_w := p_w_end[r] + 1;
        v_i := p_i_end[r] + 1;
    END LOOP;
END
$fn$;

-- Many release_lease calls in one: row k is `hitl_release` of element k, with `ord` = k.
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_release_batch(p_thread text[], p_token bigint[])
RETURNS TABLE (ord integer, released boolean)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
BEGIN
    FOR k IN 1..COALESCE(cardinality(p_thread), 0) LOOP
        ord := k;
        released := __SCHEMA__.hitl_release(p_thread[k], p_token[k]);
        RETURN NEXT;
    END LOOP;
END
$fn$;

-- Many commit_many calls (of different threads, or one thread's in order) in one. Per request
-- r: thread, namespace, lease token (NULL: unfenced), release, and the end (inclusive, 1-based)
-- of its elements in the checkpoint arrays (p_c_end), blob arrays (p_b_end), write arrays
-- (p_w_end) and inbox arrays (p_i_end); p_i_set[r] false leaves its inbox unchanged (true with
-- no elements empties it). Per checkpoint: the `hitl_commit_many` columns, its blob and write
-- end offsets relative to its request's first blob and write (as one call of it takes them).
-- Row r is that call's result, with `ord` = r. (The call is a plpgsql simple expression, not a
-- query per request.)
CREATE OR REPLACE FUNCTION __SCHEMA__.hitl_commit_many_batch(
    p_thread text[], p_ns text[], p_lease bigint[], p_release boolean[],
    p_c_end integer[], p_b_end integer[], p_w_end integer[], p_i_set boolean[],
    p_i_end integer[],
    p_expected text[], p_id text[], p_parent text[], p_created text[], p_versions jsonb[],
    p_header bytea[], p_metadata jsonb[], p_cb_end integer[], p_cw_end integer[],
    p_b_channel text[], p_b_version text[], p_b_data bytea[],
    p_w_task text[], p_w_idx integer[], p_w_channel text[], p_w_data bytea[], p_w_path text[],
    p_i_id text[], p_i_ns text[], p_i_node text[], p_i_value bytea[], p_i_created text[],
    p_i_deadline double precision[], p_i_timeout bytea[], p_i_graph text[])
RETURNS TABLE (
    ord integer, ok boolean, failed integer, actual text, lease_ok boolean,
    lease_current bigint)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    v_c integer := 1;
    v_b integer := 1;
    v_w integer := 1;
    v_i integer := 1;
    v_set boolean;
    v_res record;
BEGIN
    FOR r IN 1..COALESCE(cardinality(p_thread), 0) LOOP
        v_set := p_i_set[r];
        v_res := __SCHEMA__.hitl_commit_many(
            p_thread[r], p_ns[r], p_lease[r], p_release[r],
            p_expected[v_c:p_c_end[r]], p_id[v_c:p_c_end[r]], p_parent[v_c:p_c_end[r]],
            p_created[v_c:p_c_end[r]], p_versions[v_c:p_c_end[r]], p_header[v_c:p_c_end[r]],
            p_metadata[v_c:p_c_end[r]],
            p_cb_end[v_c:p_c_end[r]], COALESCE(p_b_channel[v_b:p_b_end[r]], '{}'),
            COALESCE(p_b_version[v_b:p_b_end[r]], '{}'), COALESCE(p_b_data[v_b:p_b_end[r]], '{}'),
            p_cw_end[v_c:p_c_end[r]], COALESCE(p_w_task[v_w:p_w_end[r]], '{}'),
            COALESCE(p_w_idx[v_w:p_w_end[r]], '{}'), COALESCE(p_w_channel[v_w:p_w_end[r]], '{}'),
            COALESCE(p_w_data[v_w:p_w_end[r]], '{}'), COALESCE(p_w_path[v_w:p_w_end[r]], '{}'),
            CASE WHEN v_set THEN COALESCE(p_i_id[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_ns[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_node[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_value[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_created[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_deadline[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_timeout[v_i:p_i_end[r]], '{}') END,
            CASE WHEN v_set THEN COALESCE(p_i_graph[v_i:p_i_end[r]], '{}') END);
        ord := r;
        ok := v_res.ok;
        failed := v_res.failed;
        actual := v_res.actual;
        lease_ok := v_res.lease_ok;
        lease_current := v_res.lease_current;
        RETURN NEXT;
        v_c := p_c_end[r] + 1;
        v_b := p_b_end[r] + 1;
        v_w := p_w_end[r] + 1;
        v_i := p_i_end[r] + 1;
    END LOOP;
END
$fn$;
"""
