-- Records successes: $1 ids, $2 the attempts each claim set, $3 results
-- (jsonb, NULL allowed), $4 this instance. Fenced: a row changes only while
-- it is still this instance's claim of that attempt; a row missing from
-- RETURNING lost its lease to the reaper and is left alone.
UPDATE dispatch.tasks AS t
   SET status = 'complete',
       result = o.result,
       finished_at = now(),
       lease_expires_at = NULL
  FROM unnest($1::bigint[], $2::int[], $3::jsonb[]) AS o(id, attempts, result)
 WHERE t.id = o.id
   AND t.status = 'in_progress'
   AND t.locked_by = $4
   AND t.attempts = o.attempts
RETURNING t.id
