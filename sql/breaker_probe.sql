-- Takes the probe of an open kind whose time is up (dispatcher/breaker.c,
-- when sync said ms_left reached 0): $1 the kind, $2 this daemon's
-- instance (name#pid), $3 how long the probe is this daemon's, in ms (the
-- handler's timeout plus the lease: if this daemon dies with it, the probe
-- lapses then and another daemon takes it). One row, the kind, when this
-- daemon won: it may claim one task of the kind, the probe, and report
-- its verdict (sql/breaker_report.sql). No row otherwise.
--
-- Several daemons at once: exactly one wins. Under READ COMMITTED a
-- second UPDATE waits for the first's row lock, then checks its WHERE
-- again against the row the first wrote, now half_open with probe_until
-- ahead, and matches nothing. A half_open row whose probe lapsed (its
-- daemon died, or said 'void') is taken the same way.
UPDATE dispatch.breakers AS b
   SET state = 'half_open',
       probe_by = $2,
       probe_until = now() + $3::bigint * interval '1 millisecond',
       changed_at = now(),
       changed_by = $2
 WHERE b.kind = $1
   AND ((b.state = 'open' AND b.open_until <= now())
        OR (b.state = 'half_open' AND b.probe_until <= now()))
RETURNING b.kind
