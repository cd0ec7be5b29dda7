-- Failed attempts that will be tried again: back to pending after a delay.
-- $1 ids, $2 attempts, $3 errors, $4 delays in milliseconds (computed by the
-- daemon: exponential, capped, jittered), $5 this instance. Fenced as in
-- complete.sql.
UPDATE dispatch.tasks AS t
   SET status = 'pending',
       run_at = now() + o.delay_ms * interval '1 millisecond',
       last_error = o.error,
       lease_expires_at = NULL
  FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[]) AS o(id, attempts, error, delay_ms)
 WHERE t.id = o.id
   AND t.status = 'in_progress'
   AND t.locked_by = $5
   AND t.attempts = o.attempts
RETURNING t.id
