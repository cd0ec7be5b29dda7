-- A SQL handler's success, inside the handler's own transaction
-- (dispatcher/handler_sql.c): $1 id, $2 the claim token. It commits with
-- the handler's statement or not at all. Fenced on the claim token
-- (migrations/0005_claim_token.sql); no row back means the claim is no
-- longer ours, and the handler's transaction is rolled back. It may wait
-- for a row lock: only this handler's own connection waits, bounded by the
-- handler's statement_timeout, never the daemon's loop.
UPDATE dispatch.tasks AS t
   SET status = 'complete',
       result = NULL,
       finished_at = now(),
       lease_expires_at = NULL
 WHERE t.id = $1
   AND t.status = 'in_progress'
   AND t.claim_token = $2
RETURNING t.id
