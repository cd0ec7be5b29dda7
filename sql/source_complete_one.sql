-- A SQL handler's completion of a source row, sent on the handler's own
-- connection inside its transaction (dispatcher/handler_sql.c), so the
-- handler's work and the row's transition commit together, as
-- sql/complete.sql does for tasks. $1 the source's name, $2 the row's
-- key, $3 the claim token. One row back when the claim was still ours.
WITH d AS (
    DELETE FROM dispatch.source_rows AS s
     WHERE s.source = $1 AND s.key = $2 AND s.claim_token = $3
    RETURNING s.key
)
UPDATE :"schema".:"table" AS t
   SET :"status" = :'complete' :set_done_one
  FROM d
 WHERE t.:"key" = CAST(d.key AS :keytype)
   AND t.:"status" = :'in_progress'
RETURNING 1
