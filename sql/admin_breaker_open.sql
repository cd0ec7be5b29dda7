-- `pgdispatch breaker-open KIND [DURATION]`: $1 the kind, $2 the duration
-- in milliseconds (NULL: until `pgdispatch breaker-reset`), $3 the
-- duration as the operator wrote it, for the sentence. The breaker ends
-- open either way, so this always succeeds; the sentence says whether it
-- was open already (dispatch.breaker_status with the statement's
-- snapshot, taken before dispatch.breaker_trip() ran).
WITH t AS (SELECT dispatch.breaker_trip($1, $2::bigint * interval '1 millisecond') AS was_not_open)
SELECT true,
       CASE WHEN $2 IS NULL
            THEN format('breaker %s open until reset (pgdispatch breaker-reset %s): no daemon claims its tasks', $1, $1)
            ELSE format('breaker %s open for %s: no daemon claims its tasks until then; then one probe task decides',
                        $1, $3::text)
       END
       || CASE WHEN t.was_not_open THEN ''
               WHEN s.seconds_left IS NULL THEN ' (it was open until reset)'
               ELSE format(' (it was open for %ss more)', s.seconds_left) END
  FROM t LEFT JOIN dispatch.breaker_status AS s ON s.kind = $1
