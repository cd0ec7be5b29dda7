-- One batch of retention of the failed-attempt log, dispatch.attempts: at
-- most $2 rows older than $1 milliseconds are deleted; returns how many.
SELECT dispatch.retention_attempts_batch($1::bigint * interval '1 millisecond', $2::int)
