-- What this daemon's handlers told about the kinds with breakers since its
-- last report (dispatcher/breaker.c), sent at most once a loop turn and
-- never from the claim or outcome statements (docs/design.md, "Breakers").
-- One entry per kind, kinds distinct:
--
--   $1 kinds
--   $2 success     a task of the kind succeeded (the failures before it are
--                  not in $3)
--   $3 fails       failed attempts that count since the last success (not
--                  the task's own fault, not stopped or cancelled)
--   $4 probe       the verdict of the probe task this daemon held: NULL (no
--                  probe ended), 'success', 'failure', or 'void' (it ended
--                  without a verdict: stopped, lease lost, not claimed)
--   $5 last_error  the latest counted failure's error (NULL: none)
--   $6 instance    this daemon (name#pid)
--
-- One row per kind of $1 that has a breaker row (others are ignored):
-- kind, was (the state before), state (after), ms_left (as in
-- sql/breaker_sync.sql) and open_ms (this opening's length; NULL when
-- closed). A row whose was and state differ is a transition this
-- statement made: only its daemon logs it, so each opening and closing is
-- logged once whatever the number of daemons.
--
-- The rules, by the row's state:
--   closed     recent = (success ? {} : recent) + fails x now(), keeping
--              those within the window, at most `failures` of them; when
--              it holds `failures`, the breaker opens for open_for_ms.
--   open       nothing changes: failures and successes of tasks claimed
--              before it opened arrive late and mean nothing now.
--   half_open  the probe's verdict, when this daemon holds the probe
--              (probe_by = $6): failure opens it again for twice the last
--              opening, at most open_max_ms; success closes it; void frees
--              the probe (probe_until = now(): any daemon may take it).
--              A verdict from another daemon (its probe lapsed and was
--              taken over) does not count, but any success closes it: the
--              service answers again.
--
-- Several daemons report at once. Each computes the new row from the row
-- as the previous writer left it: the rows are locked first (FOR UPDATE,
-- in kind order, as every statement that locks several breakers takes
-- them: no deadlock), and under READ COMMITTED a locking read that waited
-- returns the row the other transaction committed, not the one this
-- statement's snapshot saw. The UPDATE then writes the locked row (it
-- finds its snapshot's version superseded and follows to the new one,
-- which this transaction holds). So the second of two daemons that each
-- bring enough failures finds the breaker open already: one transition.
-- Rows that would not change are locked but not written (an open
-- breaker's stragglers, a success with nothing recorded): no new version,
-- no WAL beyond the lock.
WITH e AS (
    SELECT * FROM unnest($1::text[], $2::bool[], $3::int[], $4::text[], $5::text[])
                  AS e(kind, success, fails, probe, last_error)
), old AS MATERIALIZED (
    SELECT b.*
      FROM dispatch.breakers AS b
     WHERE b.kind = ANY ($1::text[])
     ORDER BY b.kind
       FOR UPDATE
), c AS (
    -- step: what happens to the row: none, count (closed, failures
    -- recorded or forgotten), open, reopen, close, free (the probe).
    -- counted: a closed row's recent after this report.
    SELECT o.*,
           e.last_error AS error,
           k.counted,
           CASE WHEN o.state = 'closed'
                THEN CASE WHEN cardinality(k.counted) >= o.failures THEN 'open' ELSE 'count' END
                WHEN o.state = 'half_open' AND e.probe = 'failure' AND o.probe_by = $6 THEN 'reopen'
                WHEN o.state = 'half_open' AND ((e.probe = 'success' AND o.probe_by = $6) OR e.success)
                THEN 'close'
                WHEN o.state = 'half_open' AND e.probe = 'void' AND o.probe_by = $6 THEN 'free'
                ELSE 'none'
           END AS step
      FROM old AS o
      JOIN e ON e.kind = o.kind
     CROSS JOIN LATERAL (
           SELECT ARRAY(SELECT newest.t
                          FROM (SELECT t
                                  FROM unnest(CASE WHEN e.success THEN '{}' ELSE o.recent END
                                              || array_fill(now(), ARRAY[greatest(coalesce(e.fails, 0), 0)]))
                                       AS t
                                 WHERE t > now() - o.window_ms * interval '1 millisecond'
                                 ORDER BY t DESC
                                 LIMIT o.failures) AS newest
                         ORDER BY newest.t) AS counted
           ) AS k
), n AS (
    SELECT c.kind,
           c.state AS was,
           CASE c.step WHEN 'open' THEN 'open' WHEN 'reopen' THEN 'open' WHEN 'close' THEN 'closed'
                       ELSE c.state END AS state,
           CASE c.step WHEN 'count' THEN c.counted WHEN 'none' THEN c.recent WHEN 'free' THEN c.recent
                       ELSE '{}' END AS recent,
           m.open_ms,
           CASE WHEN c.step IN ('open', 'reopen') THEN now() WHEN c.step = 'close' THEN NULL
                ELSE c.opened_at END AS opened_at,
           CASE WHEN c.step IN ('open', 'reopen') THEN now() + m.open_ms * interval '1 millisecond'
                WHEN c.step = 'close' THEN NULL
                ELSE c.open_until END AS open_until,
           CASE WHEN c.step IN ('open', 'reopen', 'close') THEN NULL ELSE c.probe_by END AS probe_by,
           CASE WHEN c.step = 'free' THEN now() WHEN c.step IN ('open', 'reopen', 'close') THEN NULL
                ELSE c.probe_until END AS probe_until,
           CASE WHEN c.step IN ('count', 'open', 'reopen') THEN coalesce(c.error, c.last_error)
                ELSE c.last_error END AS last_error,
           -- changed_at and changed_by say who changed the state last.
           CASE WHEN c.step IN ('open', 'reopen', 'close') THEN now() ELSE c.changed_at END AS changed_at,
           CASE WHEN c.step IN ('open', 'reopen', 'close') THEN $6 ELSE c.changed_by END AS changed_by,
           c.step IN ('open', 'reopen', 'close', 'free')
           OR (c.step = 'count' AND (c.counted <> c.recent
                                     OR coalesce(c.error, c.last_error) IS DISTINCT FROM c.last_error))
           AS write
      FROM c
     CROSS JOIN LATERAL (
           SELECT CASE c.step WHEN 'open' THEN c.open_for_ms
                              WHEN 'reopen' THEN least(coalesce(c.open_ms, c.open_for_ms) * 2, c.open_max_ms)
                              WHEN 'close' THEN NULL
                              ELSE c.open_ms END AS open_ms
           ) AS m
), u AS (
    UPDATE dispatch.breakers AS b
       SET state = n.state,
           recent = n.recent,
           open_ms = n.open_ms,
           opened_at = n.opened_at,
           open_until = n.open_until,
           probe_by = n.probe_by,
           probe_until = n.probe_until,
           last_error = n.last_error,
           changed_at = n.changed_at,
           changed_by = n.changed_by
      FROM n
     WHERE b.kind = n.kind AND n.write
)
SELECT n.kind,
       n.was,
       n.state,
       CASE WHEN n.state = 'open' AND n.open_until <> 'infinity'
            THEN greatest(ceil(extract(epoch FROM n.open_until - now()) * 1000), 0)::bigint
            WHEN n.state = 'half_open'
            THEN greatest(ceil(extract(epoch FROM n.probe_until - now()) * 1000), 0)::bigint
       END AS ms_left,
       n.open_ms
  FROM n
 ORDER BY n.kind
