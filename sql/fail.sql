-- Failed attempts with no attempts left: failed for good, kept for
-- inspection. $1 ids, $2 attempts, $3 errors, $4 this instance. Fenced as
-- in complete.sql.
UPDATE dispatch.tasks AS t
   SET status = 'failed',
       last_error = o.error,
       finished_at = now(),
       lease_expires_at = NULL
  FROM unnest($1::bigint[], $2::int[], $3::text[]) AS o(id, attempts, error)
 WHERE t.id = o.id
   AND t.status = 'in_progress'
   AND t.locked_by = $4
   AND t.attempts = o.attempts
RETURNING t.id
