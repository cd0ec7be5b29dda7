-- 0002: an index for the lease reaper.
--
-- Every daemon looks for expired leases among in-progress tasks every few
-- seconds. Without an index that is a scan of the whole table, finished rows
-- included. The index holds only in-progress rows (at most the sum of the
-- daemons' concurrency) and keys on id, not lease_expires_at, so that lease
-- renewals, which change only lease_expires_at, stay HOT updates
-- (../shared/research/pg-pitfalls.md, 2.6).
CREATE INDEX tasks_in_progress_idx ON dispatch.tasks (id) WHERE status = 'in_progress';
