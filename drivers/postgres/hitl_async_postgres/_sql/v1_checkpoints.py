"""Migrations 1-3: the checkpoint tables (`threads`, `checkpoints`, `blobs`, `writes`) and their
stored functions (`hitl_commit`, `hitl_prune`, `hitl_delete_thread`, `hitl_json_norm`).
"""

from __future__ import annotations

__all__ = ["COMMIT_NO_REUSE_SQL", "FUNCTIONS_SQL", "TABLES_SQL"]

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
