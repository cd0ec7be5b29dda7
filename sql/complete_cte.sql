-- The successes riding along with a claim (complete_and_claim*.sql, which
-- include this at their --@include line): $9 ids, $10 the claim tokens they
-- were claimed with, $11 results (jsonb, NULL allowed). Fenced on the claim
-- token like every outcome (outcomes.sql), but without locking the rows
-- first: this is the hot path, and the lock costs every call planning time
-- and a WAL record per row. A row another session holds makes this update
-- wait, but only for the work connection's lock_timeout
-- (sql/work_session.sql): then the whole statement fails (55P03), nothing
-- of it commits, and the daemon writes these successes on their own through
-- outcomes.sql, which skips locked rows, and claims again. Poll-only mode
-- sets no session lock_timeout (PgBouncer), so there successes never ride
-- along. Defines o and done (the rows written).
o AS (
    SELECT * FROM unnest($9::bigint[], $10::bigint[], $11::jsonb[]) AS o(id, token, result)
), done AS (
    UPDATE dispatch.tasks AS t
       SET status = 'complete',
           result = o.result,
           finished_at = now(),
           lease_expires_at = NULL
      FROM o
     WHERE t.id = o.id
       AND t.status = 'in_progress'
       AND t.claim_token = o.token
    RETURNING t.id, o.token
)
