-- The hot path in one statement: records the successes of the last batch
-- and claims the next, so that one commit (one WAL flush) serves both. A
-- daemon working a backlog of quick tasks runs this and little else.
--
-- $1 queue, $2 limit, $3 this instance, $4 lease in milliseconds, $5 kinds
-- to skip: as in claim.sql. $6 ids, $7 attempts, $8 results (jsonb, NULL
-- allowed): as in complete.sql, fenced the same way. The two updates touch
-- disjoint rows (in_progress ones, pending ones), which one statement may
-- do. Rows come back tagged: claimed = true for the new claims (columns as
-- in claim.sql), false for each success whose fence held (id only).
WITH done AS (
    UPDATE dispatch.tasks AS t
       SET status = 'complete',
           result = o.result,
           finished_at = now(),
           lease_expires_at = NULL
      FROM unnest($6::bigint[], $7::int[], $8::jsonb[]) AS o(id, attempts, result)
     WHERE t.id = o.id
       AND t.status = 'in_progress'
       AND t.locked_by = $3
       AND t.attempts = o.attempts
    RETURNING t.id
), c AS MATERIALIZED (
    SELECT id
      FROM dispatch.tasks
     WHERE status = 'pending'
       AND queue = $1
       AND run_at <= now()
       AND kind <> ALL ($5::text[])
     ORDER BY priority DESC, run_at, id
     LIMIT $2
       FOR NO KEY UPDATE SKIP LOCKED
), claimed AS (
    UPDATE dispatch.tasks AS t
       SET status = 'in_progress',
           attempts = t.attempts + 1,
           locked_by = $3,
           lease_expires_at = now() + $4::bigint * interval '1 millisecond',
           started_at = now()
      FROM c
     WHERE t.id = c.id
    RETURNING t.id, t.queue, t.kind, t.payload, t.attempts, coalesce(t.max_attempts, 0) AS max_attempts
)
SELECT true AS claimed, id, queue, kind, payload, attempts, max_attempts FROM claimed
UNION ALL
SELECT false, id, NULL::text, NULL::text, NULL::jsonb, NULL::int, NULL::int FROM done
