-- `pgdispatch status`: the circuit breakers worth a look
-- (dispatch.breaker_status): those not closed, and closed ones with
-- failures counting toward opening them. No rows, and so no section, when
-- every breaker is closed and quiet. failures: counted / how many open it,
-- within the window; left: until it may be probed (open) or the probe
-- lapses (half_open).
SELECT kind, state,
       failures_recorded || '/' || opens_after || ' in ' || window_s || 's' AS failures,
       CASE WHEN state = 'open' AND seconds_left IS NULL THEN 'until reset'
            ELSE coalesce(seconds_left || 's', '') END AS left,
       coalesce(probe_by, '') AS probe_by,
       to_char(changed_at, 'YYYY-MM-DD HH24:MI:SS') AS changed_at,
       left(regexp_replace(coalesce(last_error, ''), '\s+', ' ', 'g'), 60) AS last_error
  FROM dispatch.breaker_status
 WHERE state <> 'closed' OR failures_recorded > 0
 ORDER BY state = 'closed', kind
