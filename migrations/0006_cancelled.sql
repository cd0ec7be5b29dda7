-- 0006: a terminal status for tasks an operator cancelled.
--
-- dispatch.cancel() (0008) sets it; like complete and failed it is final
-- until dispatch.retry() (0007) brings the task back. Alone in its
-- migration: PostgreSQL refuses to use an enum value in the transaction
-- that added it, and the later migrations' functions, views and indexes
-- name it.
ALTER TYPE dispatch.task_status ADD VALUE 'cancelled' AFTER 'failed';
