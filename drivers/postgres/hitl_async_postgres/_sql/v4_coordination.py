"""Migration 4: coordination - leases with fencing tokens, the inbox index, the run queue and
NOTIFY on every change.
"""

from __future__ import annotations

__all__ = ["COORDINATION_SQL"]

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
