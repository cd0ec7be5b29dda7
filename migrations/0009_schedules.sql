-- 0009: the last tick of each schedule, so that many daemons running one
-- config enqueue each tick once.
--
-- A daemon enqueues a schedule's tick with sql/schedule_tick.sql: one
-- statement that moves last_tick forward to the tick, only from an earlier
-- time, and adds the task only when it did. Two daemons at the same tick
-- meet on this row (INSERT ... ON CONFLICT locks it), the second finds it
-- already at the tick and adds nothing.

CREATE TABLE dispatch.schedules (
    name       text PRIMARY KEY,                  -- the key under schedules: in the config
    last_tick  timestamptz NOT NULL,              -- the newest tick enqueued (or recorded)
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedules_name_not_empty CHECK (name <> '')
);

COMMENT ON TABLE dispatch.schedules IS
    'One row per schedule of the daemons'' config: the newest tick enqueued. '
    'A tick is enqueued only by the statement that moves last_tick forward to it, so each tick '
    'runs once however many daemons share the config. Deleting a row makes the next daemon to '
    'start (or reconnect) record the current tick without enqueuing it.';
