-- Claims up to $2 due tasks of queue $1 for instance $3. Its parts are
-- shared files that the build includes at the --@include lines
-- (`sh dispatcher/embed_gen.sh --print FILE` prints it whole, for psql);
-- claim_lock_cte.sql and claim_update_cte.sql explain the parameters and
-- the shape. Rows come back as those of complete_and_claim.sql do, so one
-- reader serves both: 'c', the id, a NULL token, then the task.
--
-- claim_limited.sql is the same for batches where some kinds have a
-- concurrency limit of their own.
WITH
--@include claim_lock_cte.sql
,
--@include claim_room_all_cte.sql
,
--@include claim_update_cte.sql
SELECT 'c' AS tag, id, NULL::bigint AS token, queue, kind, payload, attempts, max_attempts
  FROM claimed
