-- `pgdispatch enqueue`: $1 kind, $2 payload, $3 queue, $4 run_at,
-- $5 priority, $6 max_attempts, $7 dedupe_key; NULL means the default.
SELECT dispatch.enqueue($1, $2::jsonb, $3, $4::timestamptz, $5::int, $6::int, $7)
