-- `pgdispatch breaker-reset KIND`: $1 the kind. One row: whether there was
-- a breaker to close, and what to tell the operator. The breaker is read
-- through dispatch.breaker_status with the statement's snapshot, taken
-- before dispatch.breaker_reset() ran, so the sentence names the state it
-- had. A closed breaker ends closed either way (success, its failures
-- forgotten); a kind without one is an error, most likely a typo, and the
-- sentence lists the kinds that have one.
WITH r AS (SELECT dispatch.breaker_reset($1) AS changed)
SELECT s.kind IS NOT NULL,
       CASE WHEN r.changed
            THEN format('breaker %s closed (it was %s): daemons claim its tasks again', $1,
                        replace(s.state, '_', '-'))
            WHEN s.kind IS NOT NULL AND s.failures_recorded > 0
            THEN format('breaker %s was closed already; its %s recorded failure(s) are forgotten', $1,
                        s.failures_recorded)
            WHEN s.kind IS NOT NULL THEN format('breaker %s was closed already', $1)
            ELSE format('no breaker for kind %s (%s)', $1,
                        coalesce('kinds with one: ' || (SELECT string_agg(a.kind, ', ' ORDER BY a.kind)
                                                          FROM dispatch.breaker_status AS a),
                                 'no kind has one'))
       END
  FROM r LEFT JOIN dispatch.breaker_status AS s ON s.kind = $1
