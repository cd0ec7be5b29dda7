-- Records what handlers finished with, every outcome type in one statement:
-- $1 ids, $2 the claim tokens they were claimed with, $3 types ('complete',
-- 'retry', 'failed' or 'released'), $4 texts (the result as JSON for a
-- success, the error for the others; NULL allowed), $5 delays in
-- milliseconds (retry and release: when the task is due again).
--
--   complete  -> complete, result stored
--   retry     -> pending after the delay (backoff), last_error stored
--   failed    -> failed for good, last_error stored
--   released  -> pending, the attempt given back, untried: due again after
--                the delay, or keeping its place in line without one;
--                last_error replaced only when a text is given
--
-- Fenced on the claim token (migrations/0005_claim_token.sql): a row
-- changes only while it is still the claim this daemon holds. The rows are
-- locked with SKIP LOCKED first, so a row that another session holds (an
-- operator's SELECT ... FOR UPDATE, a SQL handler's transaction) delays
-- only its own outcome, never the statement (docs/design.md, "Outcomes").
--
-- One row comes back per outcome: 'w' written, 'l' locked by another
-- session (still ours: the daemon keeps it and its lease, and tries again),
-- 'x' no longer ours (the lease was lost; the row is left as others set
-- it). A release is announced like a new task, so an idle instance takes
-- it when it is due now.
--
-- A retry or a failure also adds a row to dispatch.attempts (the failed
-- attempt's number, error and instance) in this same statement, from what
-- the update wrote, so the log and the task cannot disagree
-- (migrations/0007_operations.sql). Successes and releases add nothing.
WITH o AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[])
                  AS o(id, token, type, text, delay_ms)
),
--@include fence_cte.sql
, u AS (
    UPDATE dispatch.tasks AS t
       SET status = CASE o.type WHEN 'complete' THEN 'complete'
                                WHEN 'failed' THEN 'failed'
                                ELSE 'pending' END::dispatch.task_status,
           result = CASE WHEN o.type = 'complete' THEN o.text::jsonb ELSE t.result END,
           last_error = CASE WHEN o.type = 'complete' THEN t.last_error
                             ELSE coalesce(o.text, t.last_error) END,
           run_at = CASE WHEN o.type = 'retry' OR (o.type = 'released' AND o.delay_ms > 0)
                         THEN now() + o.delay_ms * interval '1 millisecond'
                         ELSE t.run_at END,
           attempts = CASE WHEN o.type = 'released' THEN t.attempts - 1 ELSE t.attempts END,
           finished_at = CASE WHEN o.type IN ('complete', 'failed') THEN now() END,
           lease_expires_at = NULL
      FROM o JOIN mine ON mine.id = o.id AND mine.token = o.token
     WHERE t.id = mine.id
    RETURNING t.id, o.token, t.queue, o.type, o.delay_ms, t.kind, t.attempts, t.last_error, t.locked_by
), a AS (
    INSERT INTO dispatch.attempts (task_id, attempt, queue, kind, error, instance, outcome)
    SELECT u.id, u.attempts, u.queue, u.kind, u.last_error, u.locked_by, u.type
      FROM u
     WHERE u.type IN ('retry', 'failed')
)
SELECT o.id, o.token,
       CASE WHEN u.id IS NOT NULL THEN 'w'
            WHEN EXISTS (SELECT 1 FROM dispatch.tasks AS t
                          WHERE t.id = o.id AND t.status = 'in_progress' AND t.claim_token = o.token)
            THEN 'l'
            ELSE 'x' END AS fate,
       CASE WHEN u.type = 'released' AND u.delay_ms = 0 THEN pg_notify('dispatch_tasks', u.queue) END
  FROM o LEFT JOIN u ON u.id = o.id AND u.token = o.token
