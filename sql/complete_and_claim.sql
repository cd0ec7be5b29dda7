-- The hot path in one statement: records the successes of the last batch
-- and claims the next, so that one commit (one WAL flush) serves both. A
-- daemon working a backlog of quick tasks runs this and little else.
--
-- $1 queue, $2 limit, $3 this instance, $4 lease in milliseconds, $5 kinds
-- to skip, $6 the new claim token: as in claim.sql. $7 ids, $8 the claim
-- tokens they were claimed with, $9 results (jsonb, NULL allowed): the
-- successes, fenced and locked as in outcomes.sql, so a row another
-- session holds is skipped, never waited for. The two updates touch
-- disjoint rows (in_progress ones, pending ones), which one statement may
-- do.
--
-- Rows come back tagged: 'c' for each new claim (then id, a NULL token and
-- the columns of claim.sql);
-- for each success its id and token, and 'w' when it was written, 'l' when its row is locked by
-- another session (still ours: try again later) and 'x' when the claim is
-- no longer ours (the lease was lost; the row stays as others left it).
WITH o AS (
    SELECT * FROM unnest($7::bigint[], $8::bigint[], $9::jsonb[]) AS o(id, token, result)
), mine AS MATERIALIZED (
    SELECT t.id, o.token
      FROM dispatch.tasks AS t
      JOIN o ON t.id = o.id AND t.claim_token = o.token
     WHERE t.status = 'in_progress'
       FOR NO KEY UPDATE OF t SKIP LOCKED
), done AS (
    UPDATE dispatch.tasks AS t
       SET status = 'complete',
           result = o.result,
           finished_at = now(),
           lease_expires_at = NULL
      FROM o JOIN mine ON mine.id = o.id AND mine.token = o.token
     WHERE t.id = mine.id
    RETURNING t.id, o.token
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
           claim_token = $6,
           lease_expires_at = now() + $4::bigint * interval '1 millisecond',
           started_at = now()
      FROM c
     WHERE t.id = c.id
    RETURNING t.id, t.queue, t.kind, t.payload, t.attempts, coalesce(t.max_attempts, 0) AS max_attempts
)
SELECT 'c' AS tag, id, NULL::bigint AS token, queue, kind, payload, attempts, max_attempts FROM claimed
UNION ALL
SELECT CASE WHEN done.id IS NOT NULL THEN 'w'
            WHEN EXISTS (SELECT 1 FROM dispatch.tasks AS t
                          WHERE t.id = o.id AND t.status = 'in_progress' AND t.claim_token = o.token)
            THEN 'l'
            ELSE 'x' END,
       o.id, o.token, NULL::text, NULL::text, NULL::jsonb, NULL::int, NULL::int
  FROM o LEFT JOIN done ON done.id = o.id AND done.token = o.token
