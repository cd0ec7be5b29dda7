-- A source's hot path, as sql/complete_and_claim.sql: records the last
-- batch's successes ($6 to $8, source_done_cte.sql) and claims the next
-- ($1 to $5, source_claim_cte.sql) in one commit. The rows are disjoint
-- (in_progress ones, pending ones). Rows: 'c' for each claim (as in
-- source_claim.sql), 'w' for each success written (the daemon's id for it,
-- and its token).
WITH
--@include source_done_cte.sql
,
--@include source_claim_cte.sql
SELECT 'c' AS tag, NULL::bigint AS id, NULL::bigint AS token, $1::text AS queue, $1::text AS kind, claimed.payload,
       side.attempts, 0 AS max_attempts, claimed.key
  FROM claimed JOIN side ON side.key = claimed.key
UNION ALL
SELECT 'w', id, token, NULL, NULL, NULL, NULL, NULL, NULL FROM done
