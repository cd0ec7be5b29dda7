-- 0001: the task table, its claim index, the wake-up trigger, enqueue()
-- and the queue_stats view.
--
-- Migrations are forward-only and run each in its own transaction under
-- `pgdispatch migrate` (no BEGIN/COMMIT in this file). Never edit a file
-- once released: migrate refuses a changed checksum. Add 0002_... instead.

CREATE SCHEMA IF NOT EXISTS dispatch;

CREATE TYPE dispatch.task_status AS ENUM ('pending', 'in_progress', 'complete', 'failed');

CREATE TABLE dispatch.tasks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue            text NOT NULL DEFAULT 'default',
    kind             text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}',
    status           dispatch.task_status NOT NULL DEFAULT 'pending',
    priority         int NOT NULL DEFAULT 0,          -- higher runs first
    run_at           timestamptz NOT NULL DEFAULT now(),
    attempts         int NOT NULL DEFAULT 0,
    max_attempts     int,                             -- null: the handler's setting
    last_error       text,
    result           jsonb,
    locked_by        text,                            -- instance_name of the claimer
    lease_expires_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    CONSTRAINT tasks_kind_not_empty CHECK (kind <> ''),
    CONSTRAINT tasks_queue_not_empty CHECK (queue <> ''),
    CONSTRAINT tasks_attempts_not_negative CHECK (attempts >= 0),
    CONSTRAINT tasks_max_attempts_positive CHECK (max_attempts IS NULL OR max_attempts > 0)
)
-- Every task row is updated two or three times in its life (claim, lease
-- renewal, outcome), so a queue table churns far faster than the defaults
-- assume (vacuum at 50 rows + 20% of the table):
--  * fillfactor 80 leaves room on each page for the new row version, so
--    updates of unindexed columns (lease renewal, result) can stay HOT;
--  * a fixed vacuum threshold with no scale factor keeps dead tuples, which
--    every claim's index scan must step over, from piling up as the table
--    grows; no cost delay lets that vacuum finish quickly;
--  * analyze on a fixed threshold too, so the planner's picture of the
--    pending set stays current.
-- See ../shared/research/pg-pitfalls.md, 2.5 and 2.6; Oban and PgQueuer ship
-- the same kind of settings.
WITH (
    fillfactor = 80,
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 500,
    autovacuum_vacuum_cost_delay = 0,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 1000
);

-- The claim reads pending rows of a queue in exactly this order and stops
-- after LIMIT lockable rows. The predicate is a literal 'pending': a partial
-- index is matched at plan time, so the claim SQL must say
-- status = 'pending' literally, never status = $1 (pg-pitfalls.md, 2.3).
-- Keep other indexes few: every index on a column that a status change
-- touches makes that update non-HOT.
CREATE INDEX tasks_claim_idx ON dispatch.tasks (queue, priority DESC, run_at, id)
    WHERE status = 'pending';

-- Wake-ups. One notification per distinct queue per INSERT statement, with
-- the queue name as payload; identical payloads within a transaction fold
-- into one (pg-pitfalls.md, 1.2). The payload is a hint: daemons always
-- claim from the table, and poll as well, because notifications are lost
-- across disconnects and restarts.
CREATE FUNCTION dispatch.tasks_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('dispatch_tasks', q.queue)
       FROM (SELECT DISTINCT queue FROM new_tasks) AS q;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_notify
    AFTER INSERT ON dispatch.tasks
    REFERENCING NEW TABLE AS new_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION dispatch.tasks_notify();

-- Adds one task and returns its id. A NULL argument means its default, so
-- callers can pass only what they know.
CREATE FUNCTION dispatch.enqueue(
    kind         text,
    payload      jsonb DEFAULT '{}',
    queue        text DEFAULT 'default',
    run_at       timestamptz DEFAULT now(),
    priority     int DEFAULT 0,
    max_attempts int DEFAULT NULL
) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO dispatch.tasks (kind, payload, queue, run_at, priority, max_attempts)
    VALUES (enqueue.kind,
            coalesce(enqueue.payload, '{}'),
            coalesce(enqueue.queue, 'default'),
            coalesce(enqueue.run_at, now()),
            coalesce(enqueue.priority, 0),
            enqueue.max_attempts)
    RETURNING id
$$;

-- What an operator looks at first: TABLE dispatch.queue_stats.
-- oldest_due_age is how long the oldest pending task that is already due
-- has waited (null for other statuses, or when nothing pending is due):
-- it grows when the daemons fall behind.
CREATE VIEW dispatch.queue_stats AS
SELECT queue,
       status,
       count(*) AS count,
       CASE WHEN status = 'pending'
            THEN now() - min(run_at) FILTER (WHERE run_at <= now())
       END AS oldest_due_age
  FROM dispatch.tasks
 GROUP BY queue, status
 ORDER BY queue, status;
