-- The wake-up channel that dispatch.tasks_notify() signals.
LISTEN dispatch_tasks
