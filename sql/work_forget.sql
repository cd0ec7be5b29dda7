-- Forgets every statement prepared on the work connection
-- (dispatcher/work.c), after the server said one of them no longer exists
-- (26000) or can no longer run as prepared (0A000, "cached plan must not
-- change result type": a migration or an ALTER TABLE changed what it
-- returns). Each is prepared again on its next use.
DEALLOCATE ALL
