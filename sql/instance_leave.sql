-- This daemon is exiting cleanly: its row in dispatch.instances goes.
-- $1 name, $2 host, $3 pid.
DELETE FROM dispatch.instances
 WHERE name = $1 AND host = $2 AND pid = $3::int
