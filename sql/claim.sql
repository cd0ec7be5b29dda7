-- Claims up to $2 due tasks of queue $1; parameters $1 to $8 and the shape
-- are explained in claim_cte.sql, which the build includes at the
-- --@include line (`sh dispatcher/embed_gen.sh --print sql/claim.sql`
-- prints the statement whole, for psql). Rows come back as those of
-- complete_and_claim.sql do, so one reader serves both: 'c', the id, a
-- NULL token, then the task.
WITH
--@include claim_cte.sql
SELECT 'c' AS tag, id, NULL::bigint AS token, queue, kind, payload, attempts, max_attempts
  FROM claimed
