-- `pgdispatch purge INTERVAL`: $1 how old a finished task must be
-- (an interval: '30 days', '12h').
SELECT true, format('%s finished task(s) deleted', dispatch.purge($1::interval))
