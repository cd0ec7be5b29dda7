-- This process ($1: instance name and pid) is about to wait for work on queues $2: ask producers
-- for a notification (migrations/0003_wakeup_only_sleepers.sql).
INSERT INTO dispatch.sleepers (instance, queue)
SELECT $1, unnest($2::text[])
    ON CONFLICT DO NOTHING
