-- One retention batch of dispatch.source_rows (migrations/0010_sources.sql):
-- side rows no claim holds whose row failed for good ($1 ms or longer
-- ago: the failed retention), or whose backoff ended that long ago while
-- the row was never claimed again (an operator finished or deleted it by
-- hand). At most $2 rows; returns how many went. The row of the user's
-- table is not touched: only the daemon's memory of its attempts and
-- error. A plain DELETE: the worker owns this table's rows.
WITH gone AS (
    DELETE FROM dispatch.source_rows
     WHERE (source, key) IN (SELECT source, key
                               FROM dispatch.source_rows
                              WHERE claim_token IS NULL
                                AND coalesce(finished_at, not_before)
                                    < now() - $1::bigint * interval '1 millisecond'
                              LIMIT $2
                                FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT count(*) FROM gone
