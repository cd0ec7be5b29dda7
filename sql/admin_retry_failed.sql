-- `pgdispatch retry-failed [KIND] [--queue Q]`: $1 kind, $2 queue (NULL:
-- any). Always succeeds; says how many tasks went back to pending.
SELECT true, format('%s failed task(s) pending again', dispatch.retry_failed($1, $2))
