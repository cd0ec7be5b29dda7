-- Claims up to $2 rows of a source's table: see source_claim_cte.sql.
-- Rows as sql/claim.sql's, with the row's key last: 'c', a NULL id (the
-- daemon numbers the rows it holds itself: dispatcher/source.c), a NULL
-- token, the source's name as queue and kind, the payload, the attempt, 0
-- for max_attempts (the handler's setting applies), the key.
WITH
--@include source_claim_cte.sql
SELECT 'c' AS tag, NULL::bigint AS id, NULL::bigint AS token, $1::text AS queue, $1::text AS kind, claimed.payload,
       side.attempts, 0 AS max_attempts, claimed.key
  FROM claimed JOIN side ON side.key = claimed.key
