-- Claims up to $2 due tasks of queue $1 for instance $3, with a lease of $4
-- milliseconds, skipping kinds in $5 (those at their concurrency limit),
-- and marks them with claim token $6, which every later fence compares
-- (migrations/0005_claim_token.sql). Rows come back as those of
-- complete_and_claim.sql do, so one reader serves both.
--
-- Shape: the locking SELECT sits in a CTE, which PostgreSQL never inlines,
-- so it runs once and locks at most $2 rows. The tempting
-- `WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` can be planned
-- as a nested loop that reruns the subquery per row and claims far more
-- than n (docs/postgres-notes.md, "The claim"). status = 'pending' is a literal so the
-- partial index tasks_claim_idx matches at plan time; one queue per call
-- (queue = $1, not = ANY) keeps the index order usable, so the claim stops
-- after $2 rows whatever the backlog. FOR NO KEY UPDATE does not block
-- foreign keys that reference tasks (docs/postgres-notes.md).
WITH c AS MATERIALIZED (
    SELECT id
      FROM dispatch.tasks
     WHERE status = 'pending'
       AND queue = $1
       AND run_at <= now()
       AND kind <> ALL ($5::text[])
     ORDER BY priority DESC, run_at, id
     LIMIT $2
       FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE dispatch.tasks AS t
   SET status = 'in_progress',
       attempts = t.attempts + 1,
       locked_by = $3,
       claim_token = $6,
       lease_expires_at = now() + $4::bigint * interval '1 millisecond',
       started_at = now()
  FROM c
 WHERE t.id = c.id
RETURNING 'c' AS tag, t.id, NULL::bigint AS token, t.queue, t.kind, t.payload, t.attempts, coalesce(t.max_attempts, 0)
