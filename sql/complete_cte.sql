-- The successes riding along with a claim (complete_and_claim*.sql, which
-- include this at their --@include line): $9 ids, $10 the claim tokens they
-- were claimed with, $11 results (jsonb, NULL allowed). Fenced and locked as
-- in outcomes.sql (fence_cte.sql), so a row another session holds is
-- skipped, never waited for. Defines o, mine and done (the rows written).
o AS (
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
)
