-- 0003: notify only when a daemon is waiting for work.
--
-- A transaction that sends NOTIFY takes a cluster-wide lock at commit and
-- holds it across its WAL flush, so notifying inserts commit one at a time
-- (../shared/research/pg-pitfalls.md, 1.7: plain inserts scaled from 3.9k
-- to 9.4k TPS over 1-8 clients, notifying ones stayed at about 3k). A
-- daemon that is busy does not need the wake-up: it claims again the moment
-- it has room. So daemons register here when a claim comes back short (they
-- are about to wait) and leave when a claim comes back full (they will keep
-- claiming anyway), and the trigger notifies only queues that have a
-- registered daemon. While every daemon works a backlog, producers pay
-- nothing.
--
-- No wake-up may be lost in the hand-over. An insert whose trigger looked
-- before a daemon registered did not notify; the daemon must still see that
-- row. Every trigger run holds a shared advisory lock until its transaction
-- ends, and looks for sleepers only after taking it. A daemon, after
-- registering, claims again only once it can take the same lock
-- exclusively (pg_try_advisory_xact_lock, sql/sleep_confirm.sql): by then
-- every insert that might have missed its registration has committed or
-- rolled back, so that claim sees it. Until the lock is free the daemon
-- keeps polling at short, growing intervals, so a straggler waits at most
-- one interval. The try-lock never queues, so a long producer transaction
-- cannot make other producers wait behind a daemon.
--
-- Rows are keyed by a per-process token (instance name and pid), so two
-- processes sharing an instance_name, as in a rolling restart, never remove
-- each other's registrations.
--
-- Unlogged: after a crash the table is empty and daemons register again
-- when they next go idle. A daemon that dies while registered leaves its
-- rows behind; producers then notify that queue needlessly (correct, only
-- slower) until an instance of the same name registers and leaves again.
CREATE UNLOGGED TABLE dispatch.sleepers (
    instance text NOT NULL,
    queue    text NOT NULL,
    since    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, instance)
);

CREATE OR REPLACE FUNCTION dispatch.tasks_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- The hand-over needs a snapshot taken after the lock, which only READ
    -- COMMITTED gives; a REPEATABLE READ or SERIALIZABLE producer could look
    -- with a snapshot older than a registration and miss it. Such producers
    -- always notify.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM pg_notify('dispatch_tasks', q.queue)
           FROM (SELECT DISTINCT queue FROM new_tasks) AS q;
        RETURN NULL;
    END IF;
    -- Held to the end of the inserting transaction; see above.
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('pgdispatch.wakeup', 0));
    PERFORM pg_notify('dispatch_tasks', q.queue)
       FROM (SELECT DISTINCT queue FROM new_tasks) AS q
      WHERE EXISTS (SELECT 1 FROM dispatch.sleepers AS s WHERE s.queue = q.queue);
    RETURN NULL;
END
$$;
