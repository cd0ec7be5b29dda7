SELECT pg_advisory_unlock(hashtextextended('pgdispatch.migrate', 0))
