-- Extends the leases of tasks whose handlers are still running: $1 ids,
-- $2 attempts, $3 lease in milliseconds, $4 this instance. Only
-- lease_expires_at changes, an unindexed column, so the update can be HOT.
-- A row missing from RETURNING has been reaped: its lease is lost.
UPDATE dispatch.tasks AS t
   SET lease_expires_at = now() + $3::bigint * interval '1 millisecond'
  FROM unnest($1::bigint[], $2::int[]) AS o(id, attempts)
 WHERE t.id = o.id
   AND t.status = 'in_progress'
   AND t.locked_by = $4
   AND t.attempts = o.attempts
RETURNING t.id
