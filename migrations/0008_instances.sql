-- 0008: cancelling tasks, the registry of running daemons, and retention.
--
--   dispatch.cancel(id, reason), dispatch.cancel_many(kind, status, reason,
--   queue): the operator's way to stop a task; SECURITY DEFINER, for
--   dispatch_admin (sql/roles.sql).
--   dispatch.instances: every daemon's row, written by the daemon itself.
--   dispatch.retention_batch(status, older_than, max_rows),
--   dispatch.retention_attempts_batch(older_than, max_rows): one small
--   batch of finished rows deleted; SECURITY DEFINER, for dispatch_worker,
--   which has no DELETE on tasks.

-- Cancel --------------------------------------------------------------------
--
-- A pending or running task becomes cancelled, a terminal status like
-- complete and failed. locked_by and claim_token stay, so the views still
-- show who ran it; the claim no longer matches anything, because every
-- fence asks for status = 'in_progress' as well as the token. So a running
-- task's daemon loses it at its next lease renewal: it stops the handler
-- and records nothing. The notification on 'dispatch_cancel' (delivered at
-- commit, like every NOTIFY) makes that daemon renew at once instead of at
-- its next tick (docs/design.md, "Cancel").
CREATE FUNCTION dispatch.cancel(id bigint, reason text DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    was dispatch.task_status;
BEGIN
    -- Locked first: a claim on its way commits before we look, so a task
    -- claimed a moment ago is seen in progress and its daemon told.
    SELECT t.status INTO was
      FROM dispatch.tasks AS t
     WHERE t.id = cancel.id
       FOR NO KEY UPDATE;
    IF was IS NULL OR was NOT IN ('pending', 'in_progress') THEN
        RETURN false;
    END IF;
    UPDATE dispatch.tasks AS t
       SET status = 'cancelled',
           last_error = coalesce(cancel.reason, 'cancelled by ' || session_user),
           finished_at = now(),
           lease_expires_at = NULL
     WHERE t.id = cancel.id;
    IF was = 'in_progress' THEN
        PERFORM pg_notify('dispatch_cancel', cancel.id::text);
    END IF;
    RETURN true;
END
$$;

COMMENT ON FUNCTION dispatch.cancel(bigint, text) IS
    'Cancels a pending or running task (status cancelled, the reason in last_error); '
    'a running task''s daemon stops its handler within about a second. '
    'Returns false for a finished or unknown task, which is left alone.';

-- kind NULL: any kind; queue NULL: any queue. status is pending or
-- in_progress: cancelling finished tasks means nothing.
CREATE FUNCTION dispatch.cancel_many(kind text, status dispatch.task_status DEFAULT 'pending',
                                     reason text DEFAULT NULL, queue text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF cancel_many.status IS NULL OR cancel_many.status NOT IN ('pending', 'in_progress') THEN
        RAISE EXCEPTION 'cancel_many: status must be pending or in_progress, not %', cancel_many.status
            USING ERRCODE = '22023';
    END IF;
    WITH c AS (
        UPDATE dispatch.tasks AS t
           SET status = 'cancelled',
               last_error = coalesce(cancel_many.reason, 'cancelled by ' || session_user),
               finished_at = now(),
               lease_expires_at = NULL
         WHERE t.status = cancel_many.status
           AND (cancel_many.kind IS NULL OR t.kind = cancel_many.kind)
           AND (cancel_many.queue IS NULL OR t.queue = cancel_many.queue)
        RETURNING t.id
    )
    SELECT count(*) INTO n
      FROM c
     CROSS JOIN LATERAL (SELECT CASE WHEN cancel_many.status = 'in_progress'
                                     THEN pg_notify('dispatch_cancel', c.id::text) END) AS told;
    RETURN n;
END
$$;

COMMENT ON FUNCTION dispatch.cancel_many(text, dispatch.task_status, text, text) IS
    'Cancels every task of a kind (NULL: any) with a status (pending or in_progress) in a queue '
    '(NULL: any), as dispatch.cancel does one; returns how many.';

REVOKE EXECUTE ON FUNCTION dispatch.cancel(bigint, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION dispatch.cancel_many(text, dispatch.task_status, text, text) FROM PUBLIC;

-- Instances -----------------------------------------------------------------
--
-- Each daemon upserts its row after every (re)connect and on every lease
-- tick (sql/instance_beat.sql), sets state 'stopping' when a graceful
-- shutdown starts and deletes the row when it exits cleanly
-- (sql/instance_leave.sql). A daemon that dies leaves its row: any other
-- daemon's tick marks rows not seen for three of their own leases 'gone',
-- and deletes rows gone for a day. A small table of a few rows per daemon
-- host, updated every few seconds: it needs no index besides its key.
--
-- name || '#' || pid is the daemon's instance string: tasks.locked_by of
-- its claims, and application_name 'pgdispatch NAME#PID' of its
-- connections. Nothing secret goes in: no conninfo, no environment.
CREATE TABLE dispatch.instances (
    name        text NOT NULL,
    pid         int NOT NULL,
    host        text NOT NULL,
    version     text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    queues      text[] NOT NULL,
    concurrency int NOT NULL,
    running     int NOT NULL DEFAULT 0,
    state       text NOT NULL DEFAULT 'running',
    lease_ms    int NOT NULL,
    PRIMARY KEY (name, host, pid),
    CONSTRAINT instances_state CHECK (state IN ('running', 'stopping', 'gone'))
) WITH (fillfactor = 50);

COMMENT ON TABLE dispatch.instances IS
    'Which daemons are alive: one row per pgdispatch process (name#pid is its tasks.locked_by), '
    'refreshed on its lease tick. state: running, stopping (graceful shutdown under way) or gone '
    '(not seen for three leases: killed or cut off); gone rows are deleted after a day, and a '
    'daemon deletes its own row when it exits cleanly.';

-- Retention -----------------------------------------------------------------
--
-- Workers have no DELETE on tasks; these two functions are the one thing
-- they may delete, and only finished rows older than they say, at most
-- 1,000 a call. Rows are taken with SKIP LOCKED: several daemons running
-- retention at once each delete different rows and never wait on each
-- other, and a batch holds its locks only for its own short transaction.
-- The daemon calls them over and over while a batch comes back full
-- (dispatcher/retention.c).
CREATE FUNCTION dispatch.retention_batch(status dispatch.task_status, older_than interval,
                                         max_rows int DEFAULT 1000) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    IF retention_batch.status IS NULL OR retention_batch.status NOT IN ('complete', 'failed', 'cancelled') THEN
        RAISE EXCEPTION 'retention_batch: only finished tasks (complete, failed, cancelled) are deleted, not %',
            coalesce(retention_batch.status::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF retention_batch.older_than IS NULL OR retention_batch.older_than <= interval '0' THEN
        RAISE EXCEPTION 'retention_batch: older_than must be a positive interval, not %',
            coalesce(retention_batch.older_than::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF retention_batch.max_rows IS NULL OR retention_batch.max_rows NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'retention_batch: max_rows must be between 1 and 1000, not %',
            coalesce(retention_batch.max_rows::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    -- finished_at < ... implies finished_at IS NOT NULL, so the partial
    -- index tasks_finished_idx (status, finished_at) serves this when it
    -- exists.
    WITH x AS MATERIALIZED (
        SELECT t.id
          FROM dispatch.tasks AS t
         WHERE t.status = retention_batch.status
           AND t.finished_at < now() - retention_batch.older_than
         LIMIT retention_batch.max_rows
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM dispatch.tasks AS t
     USING x
     WHERE t.id = x.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

COMMENT ON FUNCTION dispatch.retention_batch(dispatch.task_status, interval, int) IS
    'Deletes at most max_rows (1..1000) tasks of a finished status whose finished_at is older '
    'than older_than, skipping rows others hold locked; returns how many. Run by the daemons '
    '(config retention:); for a one-off purge see dispatch.purge().';

-- The same for the failed-attempt log (0007), which has no statuses: a row
-- is old by its failed_at.
CREATE FUNCTION dispatch.retention_attempts_batch(older_than interval, max_rows int DEFAULT 1000)
RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    IF retention_attempts_batch.older_than IS NULL OR retention_attempts_batch.older_than <= interval '0' THEN
        RAISE EXCEPTION 'retention_attempts_batch: older_than must be a positive interval, not %',
            coalesce(retention_attempts_batch.older_than::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF retention_attempts_batch.max_rows IS NULL OR retention_attempts_batch.max_rows NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'retention_attempts_batch: max_rows must be between 1 and 1000, not %',
            coalesce(retention_attempts_batch.max_rows::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    WITH x AS MATERIALIZED (
        SELECT a.id FROM dispatch.attempts AS a
         WHERE a.failed_at < now() - retention_attempts_batch.older_than
         LIMIT retention_attempts_batch.max_rows
           FOR UPDATE SKIP LOCKED
    )
    DELETE FROM dispatch.attempts AS a USING x WHERE a.id = x.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

COMMENT ON FUNCTION dispatch.retention_attempts_batch(interval, int) IS
    'Deletes at most max_rows (1..1000) rows of the failed-attempt log dispatch.attempts older '
    'than older_than, skipping rows others hold locked; returns how many.';

REVOKE EXECUTE ON FUNCTION dispatch.retention_batch(dispatch.task_status, interval, int) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION dispatch.retention_attempts_batch(interval, int) FROM PUBLIC;
