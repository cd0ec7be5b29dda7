-- Records a source a daemon serves (dispatch.sources,
-- migrations/0010_sources.sql), for dispatch.source_stats and
-- `pgdispatch status`: $1 name, $2 the table (schema-qualified, quoted),
-- $3 key column, $4 status column, $5 to $8 the status values.
INSERT INTO dispatch.sources (name, table_name, key_column, status_column, pending, in_progress, complete, failed)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (name) DO UPDATE
   SET table_name = excluded.table_name, key_column = excluded.key_column,
       status_column = excluded.status_column, pending = excluded.pending,
       in_progress = excluded.in_progress, complete = excluded.complete, failed = excluded.failed,
       updated_at = now()
