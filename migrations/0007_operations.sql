-- 0007: what an operator needs day to day: dedupe keys, paused queues,
-- retry and purge, a log of failed attempts, and the views to look at it
-- all (README, "Admin functions" and "Dedupe keys"; docs/design.md,
-- "Operations").
--
-- Safe on a database holding tasks (an upgrade from 0005/0006). What it
-- locks, all within this one transaction:
--  * ADD COLUMN dedupe_key (nullable, no default) changes only the catalog:
--    ACCESS EXCLUSIVE on dispatch.tasks for an instant, nothing rewritten.
--  * The two CREATE INDEXes take a SHARE lock on dispatch.tasks: reads go
--    on, inserts, claims and outcomes wait until the transaction commits.
--    tasks_dedupe_idx holds no entry yet (every dedupe_key is NULL), but
--    both indexes read the whole table once, and tasks_finished_idx sorts
--    every finished row: on millions of finished rows that is seconds.
--    There, run dispatch.purge's DELETE first, or build
--    tasks_finished_idx by hand beforehand with CREATE INDEX CONCURRENTLY
--    and exactly the definition below: IF NOT EXISTS then skips it.
--  * CREATE OR REPLACE of the trigger, functions and views: ACCESS
--    EXCLUSIVE on dispatch.tasks for the trigger (an instant) and on
--    dispatch.queue_stats.
-- Daemons keep running through it: their statements wait for the locks,
-- and a prepared statement whose plan changed is prepared again
-- (docs/postgres-notes.md, "Prepared statements and schema changes").
-- Run `pgdispatch roles` afterwards: the new objects' grants are there.

-- Dedupe keys ---------------------------------------------------------------

-- While a task with the same (queue, dedupe_key) is pending or in
-- progress, another insert with that key adds nothing. Three parts:
--  * the trigger below skips such a row (RETURN NULL), so a plain INSERT
--    never fails the producer's transaction: it inserts 0 rows;
--  * it first takes a transaction advisory lock on the (queue, key) hash,
--    so racing producers take turns: the second one looks only after the
--    first committed or rolled back, and (READ COMMITTED: every statement
--    of the trigger takes a fresh snapshot) sees its row;
--  * the partial unique index is the backstop for what the trigger cannot
--    see: a REPEATABLE READ or SERIALIZABLE producer looks with its
--    transaction's snapshot, may miss a row committed while it waited for
--    the lock, and then fails with 23505 (unique_violation) as the index
--    refuses the duplicate; such producers retry, as they must on 40001.
-- ON CONFLICT DO NOTHING in enqueue() alone would not cover plain INSERTs,
-- which must not fail, and cannot infer a partial index whose predicate
-- names statuses unless every statement spells it out.
ALTER TABLE dispatch.tasks ADD COLUMN dedupe_key text;

CREATE UNIQUE INDEX tasks_dedupe_idx ON dispatch.tasks (queue, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'in_progress');

-- The advisory lock's key for (queue, key): one of 256 stripes. A lock per
-- key would hold one lock-table entry per keyed row until commit, and one
-- INSERT ... SELECT of 20,000 keyed rows would exhaust the lock table that
-- every session of the cluster shares (max_locks_per_transaction); with
-- stripes a transaction holds at most 256. Two keys of one stripe only
-- take turns; the unique index, not the lock, is what keeps keys unique.
-- The stripes sit under a fixed high part (a hash of 'pgdispatch.dedupe'),
-- so they stay clear of the small advisory keys applications use. The
-- array's text form quotes its elements, so no two pairs share a string.
-- Inlined by the planner.
CREATE FUNCTION dispatch.dedupe_lock_key(queue text, dedupe_key text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (pg_catalog.hashtextextended('pgdispatch.dedupe', 0) & ~255::bigint)
           | (pg_catalog.hashtextextended(ARRAY[queue, dedupe_key]::text, 0) & 255)
$$;

-- Runs with the inserter's rights: SELECT on dispatch.tasks, which
-- producers hold. Within one transaction the lock is taken again freely,
-- and a row-level BEFORE trigger sees the rows its statement inserted
-- before, so a multi-row INSERT with one key twice adds the first only.
CREATE FUNCTION dispatch.tasks_dedupe() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Only a live row can take a key (an owner may insert finished ones).
    IF NEW.status NOT IN ('pending', 'in_progress') THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(dispatch.dedupe_lock_key(NEW.queue, NEW.dedupe_key));
    IF EXISTS (SELECT 1 FROM dispatch.tasks AS t
                WHERE t.queue = NEW.queue AND t.dedupe_key = NEW.dedupe_key
                  AND t.status IN ('pending', 'in_progress')) THEN
        RETURN NULL;  -- a live task holds the key: add nothing
    END IF;
    RETURN NEW;
END
$$;

-- The WHEN clause is checked without calling the function: inserts
-- without a key pay nothing.
CREATE TRIGGER tasks_dedupe
    BEFORE INSERT ON dispatch.tasks
    FOR EACH ROW WHEN (NEW.dedupe_key IS NOT NULL)
    EXECUTE FUNCTION dispatch.tasks_dedupe();

-- enqueue() gains dedupe_key and returns the live task's id when the key
-- is taken. Same name, one more defaulted argument: calls with six or
-- fewer arguments, positional or named, go on working. Dropped and
-- created (a function's arguments cannot be changed in place), so its
-- grant is gone until `pgdispatch roles` runs again; meanwhile PUBLIC's
-- default EXECUTE lets producers call it, with their own rights as before.
DROP FUNCTION dispatch.enqueue(text, jsonb, text, timestamptz, int, int);

CREATE FUNCTION dispatch.enqueue(
    kind         text,
    payload      jsonb DEFAULT '{}',
    queue        text DEFAULT 'default',
    run_at       timestamptz DEFAULT now(),
    priority     int DEFAULT 0,
    max_attempts int DEFAULT NULL,
    dedupe_key   text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    q      text := coalesce(enqueue.queue, 'default');
    new_id bigint;
BEGIN
    -- Without a key, the insert names the same columns as before 0007, so
    -- it needs no privilege a producer did not have.
    IF enqueue.dedupe_key IS NULL THEN
        INSERT INTO dispatch.tasks (kind, payload, queue, run_at, priority, max_attempts)
        VALUES (enqueue.kind, coalesce(enqueue.payload, '{}'), q, coalesce(enqueue.run_at, now()),
                coalesce(enqueue.priority, 0), enqueue.max_attempts)
        RETURNING id INTO new_id;
        RETURN new_id;
    END IF;
    -- The trigger skips the row when a live task holds the key; return that
    -- task. It may have finished between the trigger's look and ours (READ
    -- COMMITTED): then the key is free and the insert goes again. Under
    -- REPEATABLE READ both looks share one snapshot and agree.
    LOOP
        INSERT INTO dispatch.tasks (kind, payload, queue, run_at, priority, max_attempts, dedupe_key)
        VALUES (enqueue.kind, coalesce(enqueue.payload, '{}'), q, coalesce(enqueue.run_at, now()),
                coalesce(enqueue.priority, 0), enqueue.max_attempts, enqueue.dedupe_key)
        RETURNING id INTO new_id;
        IF new_id IS NOT NULL THEN
            RETURN new_id;
        END IF;
        SELECT t.id INTO new_id
          FROM dispatch.tasks AS t
         WHERE t.queue = q AND t.dedupe_key = enqueue.dedupe_key
           AND t.status IN ('pending', 'in_progress');
        IF new_id IS NOT NULL THEN
            RETURN new_id;
        END IF;
    END LOOP;
END
$$;

-- Paused queues -------------------------------------------------------------

-- A queue listed here is not claimed by any daemon; running tasks finish.
-- A table, so the state holds across daemon restarts and for every daemon
-- at once. The claim (sql/claim_lock_cte.sql) checks it once per
-- statement, and sql/next_due.sql answers NULL for a paused queue, so an
-- idle daemon sets no timer for due tasks it may not take.
CREATE TABLE dispatch.queue_pauses (
    queue     text PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now(),
    paused_by text NOT NULL DEFAULT session_user
);

-- Admin functions -----------------------------------------------------------

-- All SECURITY DEFINER: they run as the schema's owner, so dispatch_admin
-- needs EXECUTE on them and no write privilege on any table. Hence the
-- fixed search_path and fully qualified names (a caller's objects cannot
-- stand in for ours), and EXECUTE revoked from PUBLIC below: sql/roles.sql
-- grants it to dispatch_admin alone.

-- true when the queue was not paused before. session_user, not
-- current_user: inside the function the latter is the owner.
CREATE FUNCTION dispatch.pause(queue text) RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    WITH p AS (
        INSERT INTO dispatch.queue_pauses (queue, paused_at, paused_by)
        VALUES (pause.queue, pg_catalog.now(), session_user)
        ON CONFLICT (queue) DO NOTHING
        RETURNING 1
    )
    SELECT EXISTS (SELECT 1 FROM p)
$$;

-- true when the queue was paused. Waiting daemons wake at once (their
-- next_due had no timer for it); the notification folds with any other
-- for the queue in the same transaction.
CREATE FUNCTION dispatch.resume(queue text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM dispatch.queue_pauses AS p WHERE p.queue = resume.queue;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_catalog.pg_notify('dispatch_tasks', resume.queue);
    RETURN true;
END
$$;

-- A failed or cancelled task goes back to pending, due now, as a fresh
-- task: attempts 0 (the obvious UPDATE ... SET status = 'pending' leaves
-- them used up, and the daemon fails the row again unrun), no claim, no
-- finish. last_error stays until the next attempt records its own;
-- dispatch.attempts keeps every failed attempt anyway. Waiting daemons are
-- notified. false, changing nothing, for any other task, and, with a
-- NOTICE, when another live task holds its dedupe key: two live tasks
-- with one key is what dedupe rules out.
CREATE FUNCTION dispatch.retry(id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t      record;
    holder bigint;
BEGIN
    -- queue and dedupe_key never change, so they can be read unlocked to
    -- take the dedupe lock first, in the order the insert trigger takes
    -- its locks (the key's, then rows); the status read here is a first
    -- look, the UPDATE checks it again.
    SELECT k.queue, k.dedupe_key, k.status INTO t FROM dispatch.tasks AS k WHERE k.id = retry.id;
    IF NOT FOUND OR t.status NOT IN ('failed', 'cancelled') THEN
        RETURN false;
    END IF;
    IF t.dedupe_key IS NOT NULL THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(dispatch.dedupe_lock_key(t.queue, t.dedupe_key));
        SELECT h.id INTO holder
          FROM dispatch.tasks AS h
         WHERE h.queue = t.queue AND h.dedupe_key = t.dedupe_key
           AND h.status IN ('pending', 'in_progress') AND h.id <> retry.id;
        IF holder IS NOT NULL THEN
            RAISE NOTICE 'task % not retried: task % holds its dedupe key % in queue %',
                retry.id, holder, t.dedupe_key, t.queue;
            RETURN false;
        END IF;
    END IF;
    BEGIN
        UPDATE dispatch.tasks AS k
           SET status = 'pending',
               run_at = pg_catalog.now(),
               attempts = 0,
               finished_at = NULL,
               lease_expires_at = NULL,
               locked_by = NULL,
               claim_token = NULL
         WHERE k.id = retry.id AND k.status IN ('failed', 'cancelled');
    EXCEPTION WHEN unique_violation THEN
        -- A holder the look above could not see (REPEATABLE READ).
        RAISE NOTICE 'task % not retried: another live task holds its dedupe key % in queue %',
            retry.id, t.dedupe_key, t.queue;
        RETURN false;
    END;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM pg_catalog.pg_notify('dispatch_tasks', t.queue);
    RETURN true;
END
$$;

-- Every task of a status (failed or cancelled) matching kind and queue
-- (NULL: any) goes back to pending as retry() does; returns how many.
-- One statement for the lot, not a loop of retry(): tasks whose dedupe key
-- a live task holds are skipped (and counted in a NOTICE), and of several
-- candidates sharing a key only the newest goes back. Under REPEATABLE
-- READ a holder committed after the snapshot can still make the update
-- fail on the unique index; then the tasks go one by one through retry(),
-- which skips such conflicts.
CREATE FUNCTION dispatch.retry_many(kind text, status dispatch.task_status DEFAULT 'failed',
                                    queue text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n       bigint;
    skipped bigint;
BEGIN
    IF retry_many.status IS NULL OR retry_many.status NOT IN ('failed', 'cancelled') THEN
        RAISE EXCEPTION 'retry_many: status must be failed or cancelled, not %', retry_many.status
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The keys' locks (stripes), in one order, so two bulk retries cannot
    -- deadlock.
    PERFORM pg_catalog.pg_advisory_xact_lock(k.lock_key)
       FROM (SELECT DISTINCT dispatch.dedupe_lock_key(c.queue, c.dedupe_key) AS lock_key
               FROM dispatch.tasks AS c
              WHERE c.status = retry_many.status AND c.dedupe_key IS NOT NULL
                AND (retry_many.kind IS NULL OR c.kind = retry_many.kind)
                AND (retry_many.queue IS NULL OR c.queue = retry_many.queue)
              ORDER BY 1) AS k;
    BEGIN
        WITH c AS (
            SELECT t.id, t.queue, t.dedupe_key,
                   t.dedupe_key IS NULL
                   OR (row_number() OVER (PARTITION BY t.queue, t.dedupe_key ORDER BY t.id DESC) = 1
                       AND NOT EXISTS (SELECT 1 FROM dispatch.tasks AS h
                                        WHERE h.queue = t.queue AND h.dedupe_key = t.dedupe_key
                                          AND h.status IN ('pending', 'in_progress'))) AS free
              FROM dispatch.tasks AS t
             WHERE t.status = retry_many.status
               AND (retry_many.kind IS NULL OR t.kind = retry_many.kind)
               AND (retry_many.queue IS NULL OR t.queue = retry_many.queue)
        ), u AS (
            UPDATE dispatch.tasks AS t
               SET status = 'pending',
                   run_at = pg_catalog.now(),
                   attempts = 0,
                   finished_at = NULL,
                   lease_expires_at = NULL,
                   locked_by = NULL,
                   claim_token = NULL
              FROM c
             WHERE t.id = c.id AND c.free AND t.status = retry_many.status
            RETURNING t.queue
        ), w AS (
            SELECT pg_catalog.pg_notify('dispatch_tasks', d.queue) FROM (SELECT DISTINCT u.queue FROM u) AS d
        )
        SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM c WHERE NOT c.free), (SELECT count(*) FROM w)
          INTO n, skipped;
    EXCEPTION WHEN unique_violation THEN
        SELECT count(*) FILTER (WHERE dispatch.retry(t.id)), count(*)
          INTO n, skipped
          FROM (SELECT t.id FROM dispatch.tasks AS t
                 WHERE t.status = retry_many.status
                   AND (retry_many.kind IS NULL OR t.kind = retry_many.kind)
                   AND (retry_many.queue IS NULL OR t.queue = retry_many.queue)
                 ORDER BY t.id) AS t;
        skipped := skipped - n;
    END;
    IF skipped > 0 THEN
        RAISE NOTICE '% task(s) not retried: another live task holds their dedupe key', skipped;
    END IF;
    RETURN n;
END
$$;

-- retry_many() of failed tasks: the common case, named for it.
CREATE FUNCTION dispatch.retry_failed(kind text DEFAULT NULL, queue text DEFAULT NULL) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT dispatch.retry_many(retry_failed.kind, 'failed', retry_failed.queue)
$$;

-- Deletes finished tasks (complete, failed, cancelled) that finished more
-- than older_than ago; returns how many. One statement: for a one-off.
-- The daemons' retention deletes in small batches instead. Pending and
-- running tasks are never touched, whatever their age.
CREATE FUNCTION dispatch.purge(older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    -- A negative interval would reach into the future: every finished
    -- task. Zero is allowed: all of them, on purpose.
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'purge: older_than must be an interval of zero or more, not %',
            coalesce(older_than::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM dispatch.tasks AS t
     WHERE t.status IN ('complete', 'failed', 'cancelled')
       AND t.finished_at < pg_catalog.now() - purge.older_than;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

REVOKE EXECUTE ON FUNCTION dispatch.pause(text), dispatch.resume(text), dispatch.retry(bigint),
    dispatch.retry_many(text, dispatch.task_status, text), dispatch.retry_failed(text, text),
    dispatch.purge(interval) FROM PUBLIC;

-- Failed attempts -----------------------------------------------------------

-- One row per attempt that did not succeed: a handler's failure the daemon
-- retries ('retry') or gives up on ('failed'), and a lease that ran out
-- ('lease expired', its daemon gone). Written in the same statement as
-- the outcome (sql/outcomes.sql, sql/reap.sql), so the two cannot
-- disagree. Successes write nothing: the hot path is as before. No foreign
-- key: the history outlives a purged task, and inserts here take no lock
-- on the task's row. Its own retention (the daemons', by failed_at).
CREATE TABLE dispatch.attempts (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id   bigint NOT NULL,
    attempt   int NOT NULL,
    queue     text NOT NULL,
    kind      text NOT NULL,
    error     text,
    instance  text,                 -- tasks.locked_by: instance#pid
    outcome   text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT attempts_outcome CHECK (outcome IN ('retry', 'failed', 'lease expired'))
);
-- Recent failures first (dispatch.failures), and retention.
CREATE INDEX attempts_failed_at_idx ON dispatch.attempts (failed_at);
-- One task's history: "why did task 42 fail?".
CREATE INDEX attempts_task_id_idx ON dispatch.attempts (task_id);

-- Finished tasks ------------------------------------------------------------

-- Retention, purge() and dispatch.throughput find finished rows by status
-- and age here instead of reading the table. Cost: one more index entry
-- per finished task. Completions were never HOT (status is in the claim
-- index's predicate), so the update already writes index entries and
-- this adds one, not a new kind of cost; claims and lease renewals do not
-- touch it (finished_at is NULL until the end: the partial predicate
-- leaves those rows out).
CREATE INDEX IF NOT EXISTS tasks_finished_idx ON dispatch.tasks (status, finished_at)
    WHERE finished_at IS NOT NULL;

-- Views ---------------------------------------------------------------------

CREATE VIEW dispatch.running AS
SELECT id,
       kind,
       queue,
       locked_by AS instance,
       attempts AS attempt,
       started_at,
       now() - started_at AS running_for,
       lease_expires_at - now() AS lease_left
  FROM dispatch.tasks
 WHERE status = 'in_progress'
 ORDER BY started_at, id;
COMMENT ON VIEW dispatch.running IS
    'What is running right now, and where: each task in progress with the daemon instance '
    '(name#pid) that holds it, its attempt, how long it has run and how much of its lease is left '
    '(negative: its daemon stopped renewing, the reaper will take it back).';

CREATE VIEW dispatch.failures AS
SELECT a.failed_at,
       a.task_id,
       a.queue,
       a.kind,
       a.attempt,
       a.outcome,
       a.error,
       a.instance,
       t.status AS task_status
  FROM dispatch.attempts AS a
  LEFT JOIN dispatch.tasks AS t ON t.id = a.task_id
 ORDER BY a.failed_at DESC, a.id DESC;
COMMENT ON VIEW dispatch.failures IS
    'Why tasks fail: every failed attempt, newest first, with its error, the instance that ran it '
    'and what happened next (outcome retry, failed or lease expired), and the task''s status now '
    '(complete when a later attempt succeeded; NULL once the task was purged). '
    'Kept as long as the attempts retention keeps it; add LIMIT or WHERE failed_at > ....';

CREATE VIEW dispatch.throughput AS
SELECT date_trunc('minute', finished_at) AS minute,
       queue,
       kind,
       count(*) FILTER (WHERE status = 'complete') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed
  FROM dispatch.tasks
 WHERE status IN ('complete', 'failed')
   AND finished_at > now() - interval '1 hour'
 GROUP BY 1, 2, 3
 ORDER BY 1 DESC, 2, 3;
COMMENT ON VIEW dispatch.throughput IS
    'How much got done: tasks completed and tasks failed for good, per minute, queue and kind, '
    'over the last hour, newest minute first (minutes with nothing finished are absent). '
    'Failed attempts that were retried are in dispatch.failures.';

-- queue_stats keeps its four columns first (CREATE OR REPLACE VIEW may only
-- add columns at the end) and gains two.
CREATE OR REPLACE VIEW dispatch.queue_stats AS
SELECT queue,
       status,
       count(*) AS count,
       CASE WHEN status = 'pending'
            THEN now() - min(run_at) FILTER (WHERE run_at <= now())
       END AS oldest_due_age,
       CASE WHEN status = 'pending'
            THEN count(*) FILTER (WHERE run_at > now())
       END AS scheduled,
       EXISTS (SELECT 1 FROM dispatch.queue_pauses AS p WHERE p.queue = t.queue) AS paused
  FROM dispatch.tasks AS t
 GROUP BY queue, status
 ORDER BY queue, status;
COMMENT ON VIEW dispatch.queue_stats IS
    'How each queue is doing: tasks per queue and status; for pending ones how long the oldest '
    'due task has waited (oldest_due_age: grows when the daemons fall behind) and how many are '
    'not due yet (scheduled); and whether the queue is paused (dispatch.pause). A paused queue '
    'with no tasks has no row: see dispatch.queue_pauses.';
