-- Hands claimed tasks back untried (shutdown past its grace, or more tasks
-- claimed than a handler's concurrency allows): pending again, due now, and
-- the attempt given back. $1 ids, $2 attempts, $3 this instance. Fenced as
-- in complete.sql. A notification per queue wakes the other instances:
-- these tasks are due now, and nothing else would announce them.
--
-- Also a task whose SQL handler could not get a connection, with $4 errors
-- and $5 delays in milliseconds (after $3 so that the fence stays as it
-- was): it comes back after the connect backoff with the reason in
-- last_error, and its notification costs the others a sweep that finds it
-- not yet due. A NULL error keeps last_error and a zero delay keeps run_at
-- (the releases above).
WITH u AS (
UPDATE dispatch.tasks AS t
   SET status = 'pending',
       attempts = t.attempts - 1,
       run_at = CASE WHEN o.delay_ms > 0 THEN now() + o.delay_ms * interval '1 millisecond' ELSE t.run_at END,
       last_error = coalesce(o.error, t.last_error),
       lease_expires_at = NULL
  FROM unnest($1::bigint[], $2::int[], $4::text[], $5::bigint[]) AS o(id, attempts, error, delay_ms)
 WHERE t.id = o.id
   AND t.status = 'in_progress'
   AND t.locked_by = $3
   AND t.attempts = o.attempts
RETURNING t.id, t.queue
)
SELECT u.id, pg_notify('dispatch_tasks', u.queue) FROM u
