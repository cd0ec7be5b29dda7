-- Returns tasks whose lease expired (their daemon died, was killed or lost
-- its connection) to pending, due now; or to failed when their attempts are
-- used up. An in_progress row without a lease (set by hand, say) counts as
-- expired: nothing would ever renew it. Any instance runs this; SKIP LOCKED
-- lets several do so at once without waiting on each other or on anyone's
-- row locks. $4 lists the tasks this instance itself holds (running, or
-- with an outcome waiting to be written): they are never its to reap, even
-- when their lease ran out while the daemon was stopped or its writes were
-- held up. The attempt limit is the task's own, else the handler's for its
-- kind as this instance knows it ($1 kinds, $2 limits), else this
-- instance's default ($3). Tasks back in pending are announced like new
-- ones, so an idle instance takes them at once. Each reaped attempt is
-- logged in dispatch.attempts ('lease expired', with the instance that
-- held it) in this same statement.
WITH x AS MATERIALIZED (
    SELECT id
      FROM dispatch.tasks
     WHERE status = 'in_progress'
       AND (lease_expires_at < now() OR lease_expires_at IS NULL)
       AND id <> ALL ($4::bigint[])
     LIMIT 1000
       FOR NO KEY UPDATE SKIP LOCKED
), r AS (
    SELECT t.id,
           t.attempts >= coalesce(t.max_attempts,
                                  (SELECT h.max_attempts
                                     FROM unnest($1::text[], $2::int[]) AS h(kind, max_attempts)
                                    WHERE h.kind = t.kind),
                                  $3::int) AS used_up
      FROM dispatch.tasks AS t JOIN x USING (id)
), u AS (
UPDATE dispatch.tasks AS t
   SET status = CASE WHEN r.used_up THEN 'failed' ELSE 'pending' END::dispatch.task_status,
       last_error = 'lease expired: ' || coalesce(t.locked_by, 'its daemon')
                    || ' stopped renewing it (crashed, killed or cut off)',
       finished_at = CASE WHEN r.used_up THEN now() END,
       run_at = CASE WHEN r.used_up THEN t.run_at ELSE now() END,
       lease_expires_at = NULL
  FROM r
 WHERE t.id = r.id
RETURNING t.id, t.kind, t.status, t.attempts, t.queue, t.last_error, t.locked_by
), a AS (
    INSERT INTO dispatch.attempts (task_id, attempt, queue, kind, error, instance, outcome)
    SELECT u.id, u.attempts, u.queue, u.kind, u.last_error, u.locked_by, 'lease expired'
      FROM u
)
SELECT u.id, u.kind, u.status, u.attempts,
       CASE WHEN u.status = 'pending' THEN pg_notify('dispatch_tasks', u.queue) END
  FROM u
