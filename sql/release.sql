-- Hands claimed tasks back untried (shutdown past its grace, or more tasks
-- claimed than a handler's concurrency allows): pending again, due now, and
-- the attempt given back. $1 ids, $2 attempts, $3 this instance. Fenced as
-- in complete.sql. A notification per queue wakes the other instances:
-- these tasks are due now, and nothing else would announce them.
WITH u AS (
UPDATE dispatch.tasks AS t
   SET status = 'pending',
       attempts = t.attempts - 1,
       lease_expires_at = NULL
  FROM unnest($1::bigint[], $2::int[]) AS o(id, attempts)
 WHERE t.id = o.id
   AND t.status = 'in_progress'
   AND t.locked_by = $3
   AND t.attempts = o.attempts
RETURNING t.id, t.queue
)
SELECT u.id, pg_notify('dispatch_tasks', u.queue) FROM u
