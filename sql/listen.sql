-- The LISTEN connection's one request, sent as one simple query: the
-- wake-up channel that dispatch.tasks_notify() signals (payload: a queue),
-- and the channel dispatch.cancel() signals when it cancels a running task
-- (payload: the task id; migrations/0008_instances.sql).
LISTEN dispatch_tasks;
LISTEN dispatch_cancel
