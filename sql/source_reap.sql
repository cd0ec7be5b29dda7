-- Returns a source's rows whose daemon stopped renewing their lease, as
-- sql/reap.sql does for tasks: $1 the source's name, $2 max_attempts (its
-- handler's), $3 the claim tokens this daemon holds (never reaped). Rows
-- still in_progress go back to the pending value, or to the failed value
-- when their attempts are used up; their side rows keep the error and
-- lose the claim. A side row whose user row is no longer in_progress
-- (changed by hand, deleted) is no one's claim: it goes. A user row
-- someone holds locked is left for the next round.
WITH x AS MATERIALIZED (
    SELECT s.key, s.attempts, s.locked_by
      FROM dispatch.source_rows AS s
     WHERE s.source = $1
       AND s.claim_token IS NOT NULL
       AND (s.lease_expires_at < now() OR s.lease_expires_at IS NULL)
       AND s.claim_token <> ALL ($3::bigint[])
     LIMIT 1000
       FOR NO KEY UPDATE OF s SKIP LOCKED
), l AS MATERIALIZED (
    SELECT x.key, x.attempts >= $2 AS used_up,
           'lease expired: ' || coalesce(x.locked_by, 'its daemon')
           || ' stopped renewing it (crashed, killed or cut off)' AS error
      FROM x
      JOIN :"schema".:"table" AS t ON t.:"key" = CAST(x.key AS :keytype)
     WHERE t.:"status" = :'in_progress'
       FOR NO KEY UPDATE OF t SKIP LOCKED
), u AS (
    UPDATE :"schema".:"table" AS t
       SET :"status" = CAST(CASE WHEN l.used_up THEN :'failed' ELSE :'pending' END AS :statustype) :set_reap
      FROM l
     WHERE t.:"key" = CAST(l.key AS :keytype)
    RETURNING l.key, l.used_up, l.error
), orphans AS (
    DELETE FROM dispatch.source_rows AS s
     USING x
     WHERE s.source = $1 AND s.key = x.key
       AND NOT EXISTS (SELECT 1 FROM :"schema".:"table" AS t
                        WHERE t.:"key" = CAST(x.key AS :keytype) AND t.:"status" = :'in_progress')
), k AS (
    UPDATE dispatch.source_rows AS s
       SET claim_token = NULL,
           lease_expires_at = NULL,
           not_before = NULL,
           last_error = u.error,
           finished_at = CASE WHEN u.used_up THEN now() END
      FROM u
     WHERE s.source = $1 AND s.key = u.key
    RETURNING s.key, s.attempts, s.locked_by, u.used_up, u.error
), a AS (
    INSERT INTO dispatch.attempts (task_id, attempt, queue, kind, error, instance, outcome, source, row_key)
    SELECT NULL, k.attempts, $1, $1, k.error, k.locked_by, 'lease expired', $1, k.key
      FROM k
)
SELECT k.key, $1::text AS kind, CASE WHEN k.used_up THEN 'failed' ELSE 'pending' END AS status, k.attempts,
       CASE WHEN NOT k.used_up THEN pg_notify('dispatch_sources', $1) END
  FROM k
