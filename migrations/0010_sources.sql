-- Sources: rows of an application's own table, dispatched in place
-- (docs/sources.md). The user's row keeps its own status value; what a
-- claim needs besides (the claim token that fences every outcome, the
-- lease, the attempt count, the backoff and the last error) lives here,
-- one row per source row in flight, in backoff, or failed with an error
-- the user's table has no column for. Nothing is added to the user's
-- table.

-- One side row per source row the daemons have touched and not finished
-- with. Created by the claim (sql/source_claim.sql), kept while the row
-- is claimed or waits out a backoff, deleted when the row completes (or
-- fails with its error kept in a column of the user's table).
--
-- One index, the primary key: a claim inserts a side row and a
-- completion deletes it, so every index here is paid per row dispatched
-- (make bench measures it against dispatch.tasks). The key comes first:
-- every statement on the hot path finds its rows by their keys, and with
-- the source first the planner, seeing one source's few live rows in its
-- statistics, may read the whole source's range, dead entries of rows
-- deleted since the last vacuum and all, and filter the keys (seen: 76,800
-- entries read for 256 rows). The reaper and retention read the table
-- whole, which holds only rows in flight, in backoff or failed.
CREATE TABLE dispatch.source_rows (
    source           text NOT NULL,          -- the source's name (config: sources.NAME)
    key              text NOT NULL,          -- the user row's key, as text
    claim_token      bigint,                 -- NULL: not claimed (in backoff, or failed)
    locked_by        text,                   -- instance#pid of the claim
    lease_expires_at timestamptz,
    attempts         int NOT NULL DEFAULT 0, -- this row's attempts so far
    not_before       timestamptz,            -- backoff: not claimed again before this
    last_error       text,
    started_at       timestamptz,
    finished_at      timestamptz,            -- set when the row failed for good
    PRIMARY KEY (key, source)
) WITH (fillfactor = 80);

COMMENT ON TABLE dispatch.source_rows IS
    'pgdispatch''s state for rows of sources (application tables dispatched in place): '
    'claim token, lease, attempts, backoff and last error. Deleted when a row completes.';

-- The next due time: rows waiting out a backoff.
CREATE INDEX source_rows_backoff_idx ON dispatch.source_rows (source, not_before)
    WHERE not_before IS NOT NULL;

-- The sources the daemons serve, as their configs describe them: written
-- by every daemon at startup (sql/source_register.sql), read by
-- dispatch.source_stats() and `pgdispatch status`. Names are as in the
-- catalog (unquoted); table_name is schema-qualified and quoted.
CREATE TABLE dispatch.sources (
    name           text PRIMARY KEY,
    table_name     text NOT NULL,
    key_column     text NOT NULL,
    status_column  text NOT NULL,
    pending        text NOT NULL,
    in_progress    text NOT NULL,
    complete       text NOT NULL,
    failed         text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The failed-attempt log serves sources too: queue and kind are the
-- source's name, these two say which row it was, and task_id is NULL.
ALTER TABLE dispatch.attempts ADD COLUMN source text, ADD COLUMN row_key text,
    ALTER COLUMN task_id DROP NOT NULL;

-- Counts per source: the user's rows per status (mapped back to
-- pending/in_progress/complete/failed; any other value is 'other'), and
-- from the side table the rows waiting out a backoff and those claimed.
-- SECURITY INVOKER on purpose: it reads the user's tables with the
-- caller's rights. A definer's function would let anyone who can write
-- dispatch.sources read any table the owner can. A table the caller cannot
-- read (or that is gone) gives one row with the error in status.
CREATE FUNCTION dispatch.source_stats()
RETURNS TABLE (source text, status text, count bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s dispatch.sources;
BEGIN
    FOR s IN SELECT * FROM dispatch.sources ORDER BY name LOOP
        BEGIN
            RETURN QUERY EXECUTE format(
                'SELECT $1, CASE t.%1$I::text WHEN $2 THEN ''pending'' WHEN $3 THEN ''in_progress'' '
                '                             WHEN $4 THEN ''complete'' WHEN $5 THEN ''failed'' '
                '                             ELSE ''other'' END AS st, count(*) '
                '  FROM %2$s AS t GROUP BY 2', s.status_column, s.table_name)
                USING s.name, s.pending, s.in_progress, s.complete, s.failed;
        EXCEPTION WHEN insufficient_privilege OR undefined_table OR undefined_column THEN
            source := s.name;
            status := 'error: ' || SQLERRM;
            count := NULL;
            RETURN NEXT;
        END;
        RETURN QUERY
            SELECT s.name, 'backoff'::text, count(*)
              FROM dispatch.source_rows AS r
             WHERE r.source = s.name AND r.not_before > now() AND r.claim_token IS NULL
            HAVING count(*) > 0;
    END LOOP;
END
$$;

COMMENT ON FUNCTION dispatch.source_stats() IS
    'Rows of each source''s table per status (counted: a sequential scan of each table), '
    'and rows waiting out a backoff.';

CREATE VIEW dispatch.source_stats AS
SELECT source, status, count FROM dispatch.source_stats();

COMMENT ON VIEW dispatch.source_stats IS
    'Rows of each source''s table per status, and rows waiting out a backoff (dispatch.source_stats()).';
