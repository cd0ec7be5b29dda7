-- Records what handlers finished with for rows of a source, every outcome
-- type in one statement, as sql/outcomes.sql does for tasks: $1 the
-- source's name, $2 the daemon's ids for the rows (only handed back, to
-- match rows to outcomes), $3 the rows' keys, $4 claim tokens, $5 types
-- ('complete', 'retry', 'failed' or 'released'), $6 texts (result or
-- error), $7 delays in milliseconds. A template, filled as source_claim_cte.sql says; for
-- the seed table :set_outcome is '' and :error_in_table false.
--
--   complete  -> the complete value; the side row goes
--   retry     -> the pending value; the side row keeps the error and the
--                backoff (not_before), so no claim takes it before then
--   failed    -> the failed value; the error stays in the side row (or in
--                the mapped last_error column, and then the side row goes)
--   released  -> the pending value, the attempt given back
--
-- Fenced on the claim token, held by the side row, and on the row still
-- being in_progress: a row an operator changed by hand is no longer ours.
-- Both rows are locked with SKIP LOCKED first, so a row someone else
-- holds delays only its own outcome ('l'); 'w' written, 'x' lost. The
-- CAST: a CASE of literals is text, which does not assign to an enum.
WITH o AS (
    SELECT * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])
                  AS o(id, key, token, type, text, delay_ms)
), mine AS MATERIALIZED (
    SELECT o.id, s.key, o.token
      FROM o
      JOIN dispatch.source_rows AS s
        ON s.source = $1 AND s.key = ANY ($3::text[]) AND s.key = o.key AND s.claim_token = o.token
      JOIN :"schema".:"table" AS t ON t.:"key" = CAST(s.key AS :keytype)
     WHERE t.:"status" = :'in_progress'
       FOR NO KEY UPDATE OF t, s SKIP LOCKED
), u AS (
    UPDATE :"schema".:"table" AS t
       SET :"status" = CAST(CASE o.type WHEN 'complete' THEN :'complete'
                                        WHEN 'failed' THEN :'failed'
                                        ELSE :'pending' END AS :statustype) :set_outcome
      FROM o JOIN mine ON mine.id = o.id AND mine.token = o.token
     WHERE t.:"key" = CAST(mine.key AS :keytype)
    RETURNING o.id, o.key, o.token, o.type, o.text, o.delay_ms
), gone AS (
    DELETE FROM dispatch.source_rows AS s
     USING u
     WHERE s.source = $1 AND s.key = u.key
       AND (u.type = 'complete' OR (u.type = 'failed' AND :error_in_table))
), kept AS (
    UPDATE dispatch.source_rows AS s
       SET claim_token = NULL,
           lease_expires_at = NULL,
           attempts = CASE WHEN u.type = 'released' THEN s.attempts - 1 ELSE s.attempts END,
           not_before = CASE WHEN u.type = 'retry' OR (u.type = 'released' AND u.delay_ms > 0)
                             THEN now() + u.delay_ms * interval '1 millisecond' END,
           last_error = CASE WHEN u.type = 'released' THEN coalesce(u.text, s.last_error) ELSE u.text END,
           finished_at = CASE WHEN u.type = 'failed' THEN now() END
      FROM u
     WHERE s.source = $1 AND s.key = u.key
       AND (u.type IN ('retry', 'released') OR (u.type = 'failed' AND NOT :error_in_table))
    RETURNING s.key
), a AS (
    INSERT INTO dispatch.attempts (task_id, attempt, queue, kind, error, instance, outcome, source, row_key)
    SELECT NULL, s.attempts, $1, $1, u.text, s.locked_by, u.type, $1, s.key
      FROM u JOIN dispatch.source_rows AS s ON s.source = $1 AND s.key = u.key
     WHERE u.type IN ('retry', 'failed')
)
SELECT o.id, o.token,
       CASE WHEN u.id IS NOT NULL THEN 'w'
            WHEN EXISTS (SELECT 1
                           FROM dispatch.source_rows AS s
                           JOIN :"schema".:"table" AS t ON t.:"key" = CAST(s.key AS :keytype)
                          WHERE s.source = $1 AND s.key = o.key AND s.claim_token = o.token
                            AND t.:"status" = :'in_progress')
            THEN 'l'
            ELSE 'x' END AS fate,
       CASE WHEN u.type = 'released' AND u.delay_ms = 0 THEN pg_notify('dispatch_sources', $1) END
  FROM o LEFT JOIN u ON u.id = o.id AND u.token = o.token
