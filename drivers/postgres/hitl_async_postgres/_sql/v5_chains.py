"""Migration 5: one round trip at each end of a run (`hitl_commit_many`,
`hitl_acquire_and_load`).
"""

from __future__ import annotations

from hitl_async_postgres._queries import WITH_BLOBS_AND_WRITES
from hitl_async_postgres._schema import PLACEHOLDER

__all__ = ["CHAINS_SQL"]

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
