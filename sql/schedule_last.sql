-- The last tick of each named schedule (dispatcher/schedule.c, at start and
-- after every reconnect): what was enqueued while this daemon was away.
-- $1 the schedules' names (text[]). Returns name and last_tick in seconds
-- since the epoch; a schedule without a row has never ticked.
SELECT name, extract(epoch FROM last_tick)::bigint AS last_tick
  FROM dispatch.schedules
 WHERE name = ANY ($1::text[])
