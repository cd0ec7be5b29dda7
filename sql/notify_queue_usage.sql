-- How full the cluster's NOTIFY queue is, in percent. A listener that stays
-- inside a transaction holds the queue's tail back; once the queue is full,
-- every transaction that notifies fails at commit with SQLSTATE 54000, and
-- the producers' inserts with it (docs/postgres-notes.md, "LISTEN and NOTIFY").
SELECT round((pg_notification_queue_usage() * 100)::numeric, 2)
