-- Least-privilege roles for pgdispatch. `pgdispatch roles` runs this file
-- (it is compiled in), `pgdispatch roles --print` prints it, and it runs
-- as is with `psql -v ON_ERROR_STOP=1 -f sql/roles.sql`.
--
--   dispatch_producer  adds tasks and reads them: nothing that changes a
--                      task once it exists
--   dispatch_worker    what `pgdispatch run` does, and nothing more
--   dispatch_admin     the operator's functions (retry, cancel, pause,
--                      resume, purge, breaker reset and trip) and reading
--                      everything
--
-- All three are NOLOGIN group roles: GRANT them to the login roles of
-- applications and daemons. Roles belong to the cluster, privileges to a
-- database: run this once in every database that holds a dispatch
-- schema, as the schema's owner (who needs CREATEROLE the first time,
-- while the roles do not exist yet), and again after every
-- `pgdispatch migrate`. Running it again is always safe: it takes the two
-- roles' privileges on schema dispatch away and grants the list below
-- afresh, in one transaction, so a database ends up with exactly this list
-- whatever an older version granted.
--
-- No ALTER DEFAULT PRIVILEGES: an object a later migration adds is granted
-- here by name, deliberately, or not at all. A migration that adds an
-- object the daemon or producers use must add its line below
-- (tests/check_roles.c lists every object of the schema and fails until
-- the new one is accounted for).
BEGIN;

-- Two runs at once in one database would collide on the catalog rows
-- they both rewrite ("tuple concurrently updated"): take turns.
SELECT pg_advisory_xact_lock(hashtextextended('pgdispatch.roles', 0));

-- Grants name the schema's objects, so they must exist.
DO $$
BEGIN
    IF to_regclass('dispatch.tasks') IS NULL OR to_regclass('dispatch.source_rows') IS NULL
       OR to_regclass('dispatch.breakers') IS NULL THEN
        RAISE EXCEPTION 'schema dispatch is missing, or older than this pgdispatch, in this database'
            USING HINT = 'Run pgdispatch migrate first.';
    END IF;
END
$$;

-- Create the roles only when missing. Two databases of one cluster set up
-- at the same moment race on the name; the loser finds the role made.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['dispatch_producer', 'dispatch_worker', 'dispatch_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
                RAISE NOTICE 'created role %', r;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
END
$$;

-- Start from nothing on schema dispatch (revoking a table's privileges
-- revokes its column privileges too).
REVOKE ALL ON SCHEMA dispatch FROM dispatch_producer, dispatch_worker, dispatch_admin;
REVOKE ALL ON ALL TABLES IN SCHEMA dispatch FROM dispatch_producer, dispatch_worker, dispatch_admin;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA dispatch FROM dispatch_producer, dispatch_worker, dispatch_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA dispatch FROM dispatch_producer, dispatch_worker, dispatch_admin;

-- All: name anything in the schema at all.
GRANT USAGE ON SCHEMA dispatch TO dispatch_producer, dispatch_worker, dispatch_admin;

-- Producers -----------------------------------------------------------------

-- INSERT names the columns a task is described by. The rest (status,
-- attempts, locked_by, lease and result columns, timestamps) take their
-- defaults, so a producer can only add a pending task, never one that
-- looks claimed or finished. The id is an identity column: its sequence
-- needs no grant. dedupe_key too: the dedupe trigger (migrations/0007)
-- runs with the inserter's rights and reads tasks, which SELECT below
-- allows.
GRANT INSERT (queue, kind, payload, priority, run_at, max_attempts, dedupe_key, order_key) ON dispatch.tasks
    TO dispatch_producer;
-- Reading its tasks back (status, result, last_error), and RETURNING id.
GRANT SELECT ON dispatch.tasks TO dispatch_producer;
-- The same insert through the function (it runs with the caller's rights,
-- so the INSERT grant above is what it uses).
GRANT EXECUTE ON FUNCTION dispatch.enqueue(text, jsonb, text, timestamptz, int, int, text, text)
    TO dispatch_producer;
-- The wake-up trigger (migrations/0003) runs with the inserter's rights
-- and asks which queues have a waiting daemon; the queue column is all it
-- reads, so instance names stay hidden.
GRANT SELECT (queue) ON dispatch.sleepers TO dispatch_producer;
-- `pgdispatch status`, `TABLE dispatch.queue_stats` and the other views
-- for psql. They run with the owner's rights: failures shows the failed
-- attempts log (no grant on dispatch.attempts itself), queue_stats which
-- queues are paused; nothing a producer could not read on tasks already
-- but the history of errors.
GRANT SELECT ON dispatch.queue_stats, dispatch.running, dispatch.failures, dispatch.throughput
    TO dispatch_producer;
-- Which daemons are alive (migrations/0008): names, hosts, queues, counts.
GRANT SELECT ON dispatch.instances TO dispatch_producer;
-- Which kinds no daemon claims for now, and why (migrations/0011): a
-- producer whose tasks stay pending can see that it is a breaker.
GRANT SELECT ON dispatch.breaker_status TO dispatch_producer;

-- Workers -------------------------------------------------------------------

-- The claim, the next-due probe, the ownership check and the reaper read
-- tasks.
GRANT SELECT ON dispatch.tasks TO dispatch_worker;
-- Exactly the columns the daemon's statements set: the claim (status,
-- attempts, locked_by, claim_token, lease_expires_at, started_at), renewal
-- (lease_expires_at), outcomes (result, last_error, finished_at),
-- retries and the reaper (run_at) and release (attempts). A task's
-- queue, kind, payload, priority and max_attempts stay as the producer
-- wrote them. Column UPDATE is also what FOR NO KEY UPDATE needs. No
-- DELETE: the daemon never removes tasks.
GRANT UPDATE (status, attempts, locked_by, claim_token, lease_expires_at, started_at, finished_at,
              result, last_error, run_at) ON dispatch.tasks
    TO dispatch_worker;
-- The schedules in the daemon's config enqueue a task per tick
-- (sql/schedule_tick.sql), so the daemon adds tasks the way a producer
-- does: the same columns, so a task it adds starts out pending and
-- unclaimed like any other. (A SQL handler that enqueues follow-up tasks
-- runs as the daemon's role too, and can now do the same.)
GRANT INSERT (queue, kind, payload, priority, run_at, max_attempts) ON dispatch.tasks
    TO dispatch_worker;
-- A schedule's last tick: read at start (sql/schedule_last.sql), moved
-- forward by the tick statement's INSERT ... ON CONFLICT DO UPDATE, which
-- needs all three.
GRANT SELECT, INSERT, UPDATE ON dispatch.schedules TO dispatch_worker;
-- Registering as waiting for work and leaving again (sql/sleep_register,
-- sql/sleep_unregister); DELETE ... WHERE instance = $1 needs SELECT. A
-- registration refreshes the process's own rows after a reconnect
-- (backend_pid, since) and removes those of dead daemons.
GRANT SELECT, INSERT, DELETE ON dispatch.sleepers TO dispatch_worker;
GRANT UPDATE (backend_pid, since) ON dispatch.sleepers TO dispatch_worker;
-- The claim and the next-due probe skip paused queues
-- (sql/claim_lock_cte.sql, sql/next_due.sql).
GRANT SELECT ON dispatch.queue_pauses TO dispatch_worker;
-- The failed-attempts log, written in the same statement as a retry, a
-- failure (sql/outcomes.sql) or a reaped lease (sql/reap.sql): INSERT of
-- the described columns only (id is an identity column: no sequence
-- grant; failed_at takes its default). No SELECT, UPDATE or DELETE: the
-- daemon never reads the log back or changes it.
GRANT INSERT (task_id, attempt, queue, kind, error, instance, outcome, source, row_key)
    ON dispatch.attempts TO dispatch_worker;
-- Sources (migrations/0010): the side table of rows in flight is the
-- daemon's alone (claim inserts, outcomes update and delete, the reaper
-- updates). Each daemon records
-- the sources it serves. The user's own tables need grants of their own,
-- which `pgdispatch check-config -d` names (docs/sources.md).
GRANT SELECT, INSERT, UPDATE, DELETE ON dispatch.source_rows TO dispatch_worker;
GRANT SELECT, INSERT, UPDATE ON dispatch.sources TO dispatch_worker;
GRANT SELECT ON dispatch.source_stats TO dispatch_worker, dispatch_producer;
GRANT EXECUTE ON FUNCTION dispatch.source_stats() TO dispatch_worker, dispatch_producer, dispatch_admin;
-- `pgdispatch status` with the daemon's credentials: nothing the SELECT
-- on tasks above does not already show, but the history of errors.
GRANT SELECT ON dispatch.queue_stats, dispatch.running, dispatch.failures, dispatch.throughput
    TO dispatch_worker;
-- The daemons' registry (migrations/0008, sql/instance_beat.sql,
-- sql/instance_leave.sql): each daemon upserts and deletes its own row,
-- marks others' rows gone when they stop being refreshed, and deletes
-- rows gone for a day.
GRANT SELECT, INSERT, UPDATE, DELETE ON dispatch.instances TO dispatch_worker;
-- Retention (dispatcher/retention.c): the only deletes a worker makes, of
-- finished rows past their age, a small batch at a time, through
-- SECURITY DEFINER functions that refuse anything else. No DELETE on
-- tasks itself.
GRANT EXECUTE ON FUNCTION dispatch.retention_batch(dispatch.task_status, interval, int),
                          dispatch.retention_attempts_batch(interval, int)
    TO dispatch_worker;
-- Circuit breakers (migrations/0011, dispatcher/breaker.c): each daemon
-- makes the rows of its kinds and writes their config
-- (sql/breaker_config.sql, INSERT ... ON CONFLICT DO UPDATE: all three),
-- reads them (sql/breaker_sync.sql), records failures, opens, probes and
-- closes (sql/breaker_report.sql, sql/breaker_probe.sql: UPDATE, and
-- SELECT ... FOR UPDATE, which UPDATE allows). No DELETE: a breaker's row
-- outlives its config. The view for `pgdispatch status`.
GRANT SELECT, INSERT, UPDATE ON dispatch.breakers TO dispatch_worker;
GRANT SELECT ON dispatch.breaker_status TO dispatch_worker;
-- Not granted: dispatch.schema_migrations (the daemon never reads the
-- ledger; migrate runs as the owner), EXECUTE of dispatch.enqueue, and
-- the trigger functions dispatch.tasks_notify() and dispatch.tasks_dedupe()
-- with its helper dispatch.dedupe_lock_key() (a trigger function runs
-- whoever inserts; no one calls it). PUBLIC keeps PostgreSQL's default
-- EXECUTE on those, which gives nothing here: they run with the caller's
-- rights, so without the grants above a call fails on the table. The
-- admin functions are the exception (see Admins). Advisory locks,
-- pg_notify and LISTEN need no grant.

-- Admins --------------------------------------------------------------------

-- Reading everything an operator looks at, the migration ledger included
-- (which schema version is this?). The admin functions are
-- SECURITY DEFINER (they run as the schema's owner), so EXECUTE on them is
-- all an admin needs to change tasks; no table privilege lets an admin
-- change a row by hand in a way the functions would not.
GRANT SELECT ON dispatch.tasks, dispatch.queue_stats, dispatch.sleepers, dispatch.attempts,
                dispatch.queue_pauses, dispatch.running, dispatch.failures, dispatch.throughput,
                dispatch.instances, dispatch.schedules, dispatch.schema_migrations,
                dispatch.source_rows, dispatch.sources, dispatch.source_stats,
                dispatch.breakers, dispatch.breaker_status
    TO dispatch_admin;
-- The operator's functions (migrations/0007, 0008 and 0011): retry one
-- task, retry many, cancel one, cancel many, pause and resume a queue,
-- purge finished tasks, close and open a kind's circuit breaker. Their migrations revoke PUBLIC's EXECUTE; so does this,
-- in case a hand gave it back, since anyone holding EXECUTE on a SECURITY
-- DEFINER function acts as the owner.
REVOKE EXECUTE ON FUNCTION dispatch.retry(bigint), dispatch.retry_many(text, dispatch.task_status, text),
    dispatch.retry_failed(text, text), dispatch.pause(text), dispatch.resume(text),
    dispatch.purge(interval), dispatch.cancel(bigint, text),
    dispatch.cancel_many(text, dispatch.task_status, text, text),
    dispatch.retention_batch(dispatch.task_status, interval, int),
    dispatch.retention_attempts_batch(interval, int),
    dispatch.breaker_reset(text), dispatch.breaker_trip(text, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dispatch.retry(bigint), dispatch.retry_many(text, dispatch.task_status, text),
    dispatch.retry_failed(text, text), dispatch.pause(text), dispatch.resume(text),
    dispatch.purge(interval), dispatch.cancel(bigint, text),
    dispatch.cancel_many(text, dispatch.task_status, text, text),
    dispatch.breaker_reset(text), dispatch.breaker_trip(text, interval) TO dispatch_admin;

-- A GRANT by someone who does not own the objects is only a WARNING, and
-- the roles would be left with nothing. Say so as an error instead.
DO $$
BEGIN
    IF NOT has_column_privilege('dispatch_worker', 'dispatch.tasks', 'status', 'UPDATE')
       OR NOT has_column_privilege('dispatch_producer', 'dispatch.tasks', 'kind', 'INSERT')
       OR NOT has_table_privilege('dispatch_producer', 'dispatch.queue_stats', 'SELECT')
       OR NOT has_table_privilege('dispatch_admin', 'dispatch.tasks', 'SELECT')
       OR NOT has_function_privilege('dispatch_admin', 'dispatch.retry(bigint)', 'EXECUTE') THEN
        RAISE EXCEPTION 'the grants did not take effect'
            USING HINT = 'Run this as the owner of schema dispatch (the role that ran pgdispatch migrate).';
    END IF;
END
$$;

COMMIT;
