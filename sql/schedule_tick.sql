-- A schedule's tick (dispatcher/schedule.c): moves the schedule's
-- last_tick forward to the tick, only from an earlier time, and in the same
-- statement adds the tick's task, only when it moved. Daemons running the
-- same config send this for the same tick; the row lock that ON CONFLICT
-- takes makes them take turns, and the later one finds last_tick already
-- at the tick: exactly one task per tick.
--
-- $1 schedule name, $2 the tick (seconds since the epoch), $3 kind,
-- $4 payload (jsonb), $5 queue, $6 priority, $7 max_attempts (NULL: the
-- kind's handler decides), $8 enqueue (false: record the tick only, as a
-- schedule's first start does). The task is due at the tick.
-- Returns the new task's id, or no row.
WITH advanced AS (
    INSERT INTO dispatch.schedules AS s (name, last_tick)
    VALUES ($1, to_timestamp($2::bigint))
    ON CONFLICT (name) DO UPDATE
        SET last_tick = EXCLUDED.last_tick, updated_at = now()
        WHERE s.last_tick < EXCLUDED.last_tick
    RETURNING s.last_tick
)
INSERT INTO dispatch.tasks (queue, kind, payload, priority, run_at, max_attempts)
SELECT $5, $3, $4::jsonb, $6::int, last_tick, $7::int
  FROM advanced
 WHERE $8::boolean
RETURNING id
