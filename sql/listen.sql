-- The LISTEN connection's one request, sent as one simple query: the
-- wake-up channel that dispatch.tasks_notify() signals (payload: a queue),
-- and the channel dispatch.cancel() signals when it cancels a running task
-- (payload: the task id; migrations/0008_instances.sql), and the channel
-- a source's row released or reaped back to pending is announced on
-- (payload: the source's name; sql/source_outcomes.sql). Each source's own
-- channel is added after these (dispatcher/listener.c).
LISTEN dispatch_tasks;
LISTEN dispatch_cancel;
LISTEN dispatch_sources
