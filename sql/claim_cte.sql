-- The claim, shared by claim.sql and complete_and_claim.sql, which include
-- it at their --@include line (dispatcher/embed_gen.sh expands it at build
-- time; --print shows the result). It defines the CTEs c, room and claimed.
--
-- $1 queue, $2 limit, $3 this instance (locked_by), $4 lease in
-- milliseconds, $5 kinds to skip (at their concurrency limit), $6 the claim
-- token (migrations/0005_claim_token.sql), $7 kinds with a concurrency limit
-- of their own and $8 the room each has left.
--
-- Shape: the locking SELECT sits in a CTE, which PostgreSQL never inlines,
-- so it runs once and locks at most $2 rows. The tempting
-- `WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` can be planned
-- as a nested loop that reruns the subquery per row and claims far more
-- than n (docs/postgres-notes.md, "The claim"). status = 'pending' is a
-- literal so the partial index tasks_claim_idx matches at plan time; one
-- queue per call (queue = $1, not = ANY) keeps the index order usable, so
-- the claim stops after $2 rows whatever the backlog. FOR NO KEY UPDATE
-- does not block foreign keys that reference tasks.
--
-- Per-kind limits are kept here, before anything is claimed: of the locked
-- rows, a limited kind gets only as many as it has room for; the others
-- stay pending (their locks go at commit). With no limited kind in $7 the
-- ranking branch is pruned at plan time (custom plans: sql/work_session.sql).
-- The update takes the ids as one array: joined to the UNION instead, the
-- planner cannot tell how few rows come and may hash-join the whole table.
c AS MATERIALIZED (
    SELECT id, kind, priority, run_at
      FROM dispatch.tasks
     WHERE status = 'pending'
       AND queue = $1
       AND run_at <= now()
       AND kind <> ALL ($5::text[])
     ORDER BY priority DESC, run_at, id
     LIMIT $2
       FOR NO KEY UPDATE SKIP LOCKED
), room AS (
    SELECT id FROM c WHERE cardinality($7::text[]) = 0
    UNION ALL
    SELECT ranked.id
      FROM (SELECT c.id, c.kind,
                   row_number() OVER (PARTITION BY c.kind ORDER BY c.priority DESC, c.run_at, c.id) AS nth
              FROM c) AS ranked
      LEFT JOIN unnest($7::text[], $8::int[]) AS r(kind, room) ON r.kind = ranked.kind
     WHERE cardinality($7::text[]) > 0
       AND (r.room IS NULL OR ranked.nth <= r.room)
), claimed AS (
    UPDATE dispatch.tasks AS t
       SET status = 'in_progress',
           attempts = t.attempts + 1,
           locked_by = $3,
           claim_token = $6,
           lease_expires_at = now() + $4::bigint * interval '1 millisecond',
           started_at = now()
     WHERE t.id = ANY (ARRAY(SELECT id FROM room))
    RETURNING t.id, t.queue, t.kind, t.payload, t.attempts, coalesce(t.max_attempts, 0) AS max_attempts
)
