-- `pgdispatch cancel ID [--reason TEXT]`: $1 the task, $2 the reason
-- (NULL: "cancelled by" the session's user). One row: whether it changed,
-- and what to tell the operator; the task's status is the one it had
-- before (the statement's snapshot).
WITH c AS (SELECT dispatch.cancel($1::bigint, $2) AS changed)
SELECT c.changed,
       CASE WHEN c.changed AND t.status = 'in_progress'
            THEN format('task %s cancelled; its handler on %s is being stopped', $1, t.locked_by)
            WHEN c.changed THEN format('task %s cancelled', $1)
            WHEN t.status IS NULL THEN format('no task %s', $1)
            ELSE format('task %s is %s: only pending or running tasks are cancelled', $1, t.status)
       END
  FROM c LEFT JOIN dispatch.tasks AS t ON t.id = $1::bigint
