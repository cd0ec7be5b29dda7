-- Claims up to $2 due tasks of queue $1; parameters $1 to $8 and the shape
-- are explained in claim_cte.sql, which psql's \ir includes here (and the
-- build does the same). Rows come back as those of complete_and_claim.sql
-- do, so one reader serves both: 'c', the id, a NULL token, then the task.
WITH
\ir claim_cte.sql
SELECT 'c' AS tag, id, NULL::bigint AS token, queue, kind, payload, attempts, max_attempts
  FROM claimed
