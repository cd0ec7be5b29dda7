-- Held by `pgdispatch migrate` for its whole run, so two migrates never
-- interleave; a second one waits here and then finds nothing left to do.
-- Session-level: it spans the per-file transactions. The key is a fixed
-- hash so every pgdispatch version agrees on it.
SELECT pg_advisory_lock(hashtextextended('pgdispatch.migrate', 0))
