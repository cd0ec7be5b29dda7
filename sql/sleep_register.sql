-- This process ($1: instance name and pid) is about to wait for work on
-- queues $2: ask producers for a notification
-- (migrations/0003_wakeup_only_sleepers.sql). Registrations whose backend
-- has gone (a daemon killed while waiting) are removed first
-- (migrations/0004_sleepers_backend_pid.sql). This process's own rows are
-- refreshed instead: after a reconnect they name its old, dead backend.
WITH gone AS (
    DELETE FROM dispatch.sleepers AS s
     WHERE s.instance <> $1
       AND s.backend_pid IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a WHERE a.pid = s.backend_pid)
)
INSERT INTO dispatch.sleepers (instance, queue)
SELECT $1, unnest($2::text[])
    ON CONFLICT (queue, instance) DO UPDATE SET backend_pid = excluded.backend_pid, since = now()
