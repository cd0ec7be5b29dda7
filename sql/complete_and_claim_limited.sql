-- The hot path in one statement: records the successes of the last batch
-- and claims the next, so that one commit (one WAL flush) serves both. A
-- daemon working a backlog of quick tasks runs this and little else. The
-- two updates touch disjoint rows (in_progress ones, pending ones), which
-- one statement may do.
--
-- Its parts are shared files that the build includes at the --@include
-- lines (`sh dispatcher/embed_gen.sh --print FILE` prints the statement
-- whole, for psql): $1 to $8 the claim (claim_lock_cte.sql,
-- claim_update_cte.sql), $9 to $11 the successes (complete_cte.sql).
--
-- Rows come back tagged: 'c' for each new claim (then the id, a NULL token
-- and the task's columns, as in claim.sql), 'w' for each success written
-- (its id and token). A success with no row was not written: its row is
-- locked by another session, or the claim is no longer ours; the daemon
-- writes it on its own (outcomes.sql), which tells the two apart. Telling
-- them apart here would cost every call planning time for a rare case.
--
-- This one keeps per-kind limits (claim_room_cte.sql); complete_and_claim.sql
-- is the same for batches where no kind has a limit of its own.
WITH
--@include complete_cte.sql
,
--@include claim_lock_cte.sql
,
--@include claim_room_cte.sql
,
--@include claim_update_cte.sql
SELECT 'c' AS tag, id, NULL::bigint AS token, queue, kind, payload, attempts, max_attempts FROM claimed
UNION ALL
SELECT 'w', id, token, NULL::text, NULL::text, NULL::jsonb, NULL::int, NULL::int FROM done
