-- Extends the leases of tasks whose handlers are still running: $1 ids,
-- $2 attempts, $3 lease in milliseconds, $4 this instance. Only
-- lease_expires_at changes, an unindexed column, so the update can be HOT.
--
-- SKIP LOCKED: a row can be locked by this very daemon's SQL handler
-- transaction (its fenced completion is in, its COMMIT not yet). Waiting
-- for that lock here would wait for ourselves. A row missing from
-- RETURNING is therefore either locked or lost; owned.sql tells which.
WITH mine AS MATERIALIZED (
    SELECT t.id
      FROM dispatch.tasks AS t
      JOIN unnest($1::bigint[], $2::int[]) AS o(id, attempts) ON t.id = o.id
     WHERE t.status = 'in_progress'
       AND t.locked_by = $4
       AND t.attempts = o.attempts
       FOR NO KEY UPDATE OF t SKIP LOCKED
)
UPDATE dispatch.tasks AS t
   SET lease_expires_at = now() + $3::bigint * interval '1 millisecond'
  FROM mine
 WHERE t.id = mine.id
RETURNING t.id
