"""Migration 6: group commit - the batch functions, a leaner `hitl_commit_many`, plpgsql notify
functions.
"""

from __future__ import annotations

__all__ = ["BATCHES_SQL"]

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
