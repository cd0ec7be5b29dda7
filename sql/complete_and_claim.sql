-- The hot path in one statement: records the successes of the last batch
-- and claims the next, so that one commit (one WAL flush) serves both. A
-- daemon working a backlog of quick tasks runs this and little else.
--
-- $1 to $8: the claim, as in claim_cte.sql (included by the build at the
-- --@include line; `sh dispatcher/embed_gen.sh --print` prints it whole). $9 ids, $10 the claim tokens they were
-- claimed with, $11 results (jsonb, NULL allowed): the
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
    SELECT * FROM unnest($9::bigint[], $10::bigint[], $11::jsonb[]) AS o(id, token, result)
),
--@include fence_cte.sql
, done AS (
    UPDATE dispatch.tasks AS t
       SET status = 'complete',
           result = o.result,
           finished_at = now(),
           lease_expires_at = NULL
      FROM o JOIN mine ON mine.id = o.id AND mine.token = o.token
     WHERE t.id = mine.id
    RETURNING t.id, o.token
),
--@include claim_cte.sql
SELECT 'c' AS tag, id, NULL::bigint AS token, queue, kind, payload, attempts, max_attempts FROM claimed
UNION ALL
SELECT CASE WHEN done.id IS NOT NULL THEN 'w'
            WHEN EXISTS (SELECT 1 FROM dispatch.tasks AS t
                          WHERE t.id = o.id AND t.status = 'in_progress' AND t.claim_token = o.token)
            THEN 'l'
            ELSE 'x' END,
       o.id, o.token, NULL::text, NULL::text, NULL::jsonb, NULL::int, NULL::int
  FROM o LEFT JOIN done ON done.id = o.id AND done.token = o.token
