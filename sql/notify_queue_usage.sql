-- How full the cluster's NOTIFY queue is, in percent. A listener that stays
-- inside a transaction holds the queue's tail back; once the queue is full,
-- every transaction that notifies fails at commit with SQLSTATE 54000, and
-- the producers' inserts with it (../shared/research/pg-pitfalls.md, 1.4).
SELECT round((pg_notification_queue_usage() * 100)::numeric, 2)
