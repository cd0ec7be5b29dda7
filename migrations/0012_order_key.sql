-- Per-key ordering (README "Ordered delivery"): tasks that share an
-- order_key run one at a time, in id order, across every daemon. A task of
-- a key is claimed only when no task of the key is in progress and none
-- with a smaller id is pending: the key's head blocks the rest while it
-- runs, and while it waits out a retry's backoff, so a retry never lets a
-- later task overtake it. A head that ends failed (or cancelled) stops
-- blocking: the next task of the key goes on, and the failed one waits
-- for an operator. "In progress, whatever its id" matters: a task with a
-- smaller id that commits late, or a failed head an operator retries,
-- waits for the running one instead of running beside it.
--
-- Tasks without a key (NULL, the default) are claimed as before; the
-- claim's extra condition is short-circuited for them.
ALTER TABLE dispatch.tasks ADD COLUMN order_key text;

COMMENT ON COLUMN dispatch.tasks.order_key IS
    'Tasks with the same order_key run one at a time, in id order: a task is not claimed while '
    'one of its key is in progress, or one with a smaller id is pending (also while that one '
    'waits to be retried). NULL: no ordering.';

-- The head check's indexes: only keyed tasks that are pending, or in
-- progress, so they stay as small as the keyed backlog and tasks without
-- a key cost nothing here. One probe of each answers whether a task is
-- its key's head: none pending with a smaller id, none running. Built
-- with a plain CREATE INDEX (migrations run in a transaction), which
-- blocks writes to dispatch.tasks while it reads the table once: on a
-- large table, run this migration at a quiet time.
CREATE INDEX tasks_order_idx ON dispatch.tasks (order_key, id)
    WHERE order_key IS NOT NULL AND status = 'pending';
CREATE INDEX tasks_order_running_idx ON dispatch.tasks (order_key)
    WHERE order_key IS NOT NULL AND status = 'in_progress';

-- enqueue() takes the key too. Dropped and created, as in 0007 (a
-- function's arguments cannot change in place): its grant is gone until
-- `pgdispatch roles` runs again; meanwhile PUBLIC's default EXECUTE lets
-- producers call it with their own rights, as before.
DROP FUNCTION dispatch.enqueue(text, jsonb, text, timestamptz, int, int, text);

CREATE FUNCTION dispatch.enqueue(
    kind         text,
    payload      jsonb DEFAULT '{}',
    queue        text DEFAULT 'default',
    run_at       timestamptz DEFAULT now(),
    priority     int DEFAULT 0,
    max_attempts int DEFAULT NULL,
    dedupe_key   text DEFAULT NULL,
    order_key    text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    q      text := coalesce(enqueue.queue, 'default');
    new_id bigint;
BEGIN
    -- Without a dedupe key, one insert; the order_key column is named only
    -- when set, so a producer without the grant on it (roles.sql before
    -- 0012) can still enqueue as before.
    IF enqueue.dedupe_key IS NULL AND enqueue.order_key IS NULL THEN
        INSERT INTO dispatch.tasks (kind, payload, queue, run_at, priority, max_attempts)
        VALUES (enqueue.kind, coalesce(enqueue.payload, '{}'), q, coalesce(enqueue.run_at, now()),
                coalesce(enqueue.priority, 0), enqueue.max_attempts)
        RETURNING id INTO new_id;
        RETURN new_id;
    END IF;
    IF enqueue.dedupe_key IS NULL THEN
        INSERT INTO dispatch.tasks (kind, payload, queue, run_at, priority, max_attempts, order_key)
        VALUES (enqueue.kind, coalesce(enqueue.payload, '{}'), q, coalesce(enqueue.run_at, now()),
                coalesce(enqueue.priority, 0), enqueue.max_attempts, enqueue.order_key)
        RETURNING id INTO new_id;
        RETURN new_id;
    END IF;
    -- The dedupe trigger skips the row when a live task holds the key;
    -- return that task. It may have finished between the trigger's look
    -- and ours (READ COMMITTED): then the key is free and the insert goes
    -- again. Under REPEATABLE READ both looks share one snapshot and agree.
    LOOP
        INSERT INTO dispatch.tasks (kind, payload, queue, run_at, priority, max_attempts, dedupe_key, order_key)
        VALUES (enqueue.kind, coalesce(enqueue.payload, '{}'), q, coalesce(enqueue.run_at, now()),
                coalesce(enqueue.priority, 0), enqueue.max_attempts, enqueue.dedupe_key, enqueue.order_key)
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
