-- Set once on the daemon's work connection, before its statements are
-- prepared. A prepared statement switches to a generic plan after five runs
-- when that looks no costlier, and for the claim it is far costlier: with
-- LIMIT $2 and queue = $1 unknown, the generic plan sorts every pending row
-- of the table (measured: 91 ms instead of 3 ms for 100,000 pending rows).
-- Custom plans keep the claim an index scan that stops after LIMIT rows;
-- preparing still saves the parse.
SET plan_cache_mode = force_custom_plan
