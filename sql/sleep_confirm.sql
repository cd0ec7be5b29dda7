-- True once no inserting transaction holds the wake-up lock: every insert
-- that could have missed this instance's registration has ended, so the
-- next claim sees its rows (migrations/0003_wakeup_only_sleepers.sql).
-- Never waits: a lock that is taken answers false at once.
SELECT pg_try_advisory_xact_lock(hashtextextended('pgdispatch.wakeup', 0))
