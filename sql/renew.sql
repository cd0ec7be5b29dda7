-- Extends the leases of the claims this daemon holds: tasks whose handlers
-- run, and tasks whose outcome waits to be written (they are still ours
-- until it is). $1 ids, $2 claim tokens, $3 lease in milliseconds. Only
-- lease_expires_at changes, an unindexed column, so the update can be HOT.
--
-- SKIP LOCKED: a row can be locked by this very daemon's SQL handler
-- transaction (its fenced completion is in, its COMMIT not yet), or by
-- another session. Waiting for that lock here would stall every lease
-- behind one row, or wait for ourselves. A locked row is still ours; it is
-- renewed on the next tick.
--
-- Returns the claims that are no longer ours: the lease was lost (another
-- instance reaped the task, or an operator reset it), or the task was
-- cancelled while this claim held it (dispatch.cancel() keeps the claim
-- token), then with the reason, so the daemon can say which.
WITH o AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS o(id, token)
),
--@include fence_cte.sql
, u AS (
    UPDATE dispatch.tasks AS t
       SET lease_expires_at = now() + $3::bigint * interval '1 millisecond'
      FROM mine
     WHERE t.id = mine.id
    RETURNING t.id, t.claim_token
)
SELECT o.id, o.token,
       coalesce(t.status = 'cancelled' AND t.claim_token = o.token, false) AS cancelled,
       CASE WHEN t.status = 'cancelled' AND t.claim_token = o.token THEN t.last_error END AS reason
  FROM o
  LEFT JOIN dispatch.tasks AS t ON t.id = o.id
 WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.id = o.id AND u.claim_token = o.token)
   AND (t.id IS NULL OR t.status <> 'in_progress' OR t.claim_token IS DISTINCT FROM o.token)
