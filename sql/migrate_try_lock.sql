-- Asked first, so a migrate that must wait can say why it is waiting.
SELECT pg_try_advisory_lock(hashtextextended('pgdispatch.migrate', 0))
