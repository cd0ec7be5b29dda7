-- What the breakers of this daemon's kinds are now (dispatcher/breaker.c):
-- run at the lease rhythm, at connect and at reload, so that a breaker
-- another daemon opened or closed, or an operator reset, reaches this
-- daemon within one period. $1 the kinds with a breaker here, $2 this
-- daemon's instance (name#pid). One row per kind that has a breaker row:
--
--   state     closed, open or half_open
--   mine      half_open and this daemon holds the probe, still in time:
--             it may claim the one probe task
--   ms_left   open: until it may be probed (>= 0; NULL when opened by hand
--             until reset: never); half_open: until the probe lapses and
--             any daemon may take it (>= 0); closed: NULL. Rounded up, so
--             a timer set to it never fires a millisecond early.
--   recorded  the failures that count now (within the window): with 0 the
--             daemon need not write a success
--
-- Read-only and unlocked: a report or a probe a moment later is where a
-- decision is made under the row's lock.
SELECT b.kind,
       b.state,
       coalesce(b.state = 'half_open' AND b.probe_by = $2 AND b.probe_until > now(), false) AS mine,
       CASE WHEN b.state = 'open' AND b.open_until <> 'infinity'
            THEN greatest(ceil(extract(epoch FROM b.open_until - now()) * 1000), 0)::bigint
            WHEN b.state = 'half_open'
            THEN greatest(ceil(extract(epoch FROM b.probe_until - now()) * 1000), 0)::bigint
       END AS ms_left,
       (SELECT count(*) FROM unnest(b.recent) AS t
         WHERE t > now() - b.window_ms * interval '1 millisecond')::int AS recorded
  FROM dispatch.breakers AS b
 WHERE b.kind = ANY ($1::text[])
 ORDER BY b.kind
