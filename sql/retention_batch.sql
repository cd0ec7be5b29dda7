-- One batch of retention (dispatcher/retention.c): at most $3 tasks of the
-- finished status $1 whose finished_at is older than $2 milliseconds are
-- deleted; returns how many. A full batch means more may be waiting.
-- The function (migrations/0008) takes its rows with SKIP LOCKED.
SELECT dispatch.retention_batch($1::dispatch.task_status, $2::bigint * interval '1 millisecond', $3::int)
