-- `pgdispatch retry ID`: $1 the task. One row: whether it changed, and
-- what to tell the operator. The task is read with the statement's
-- snapshot, taken before dispatch.retry() ran, so a refusal names the
-- status the task had.
WITH r AS (SELECT dispatch.retry($1::bigint) AS changed)
SELECT r.changed,
       CASE WHEN r.changed THEN format('task %s: pending again, due now', $1)
            WHEN t.status IS NULL THEN format('no task %s', $1)
            WHEN t.status IN ('failed', 'cancelled')
            THEN format('task %s not retried (see the notice above)', $1)
            ELSE format('task %s is %s: only failed or cancelled tasks are retried', $1, t.status)
       END
  FROM r LEFT JOIN dispatch.tasks AS t ON t.id = $1::bigint
