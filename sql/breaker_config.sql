-- The breakers in this daemon's config (dispatcher/breaker.c), written at
-- every connect and reload, before the first sync: $1 kinds, $2 failures,
-- $3 window_ms, $4 open_for_ms, $5 open_max_ms (arrays of one length, one
-- entry per handler with breaker:). A missing row is made closed; an
-- existing row keeps its state and takes the config columns (the last
-- daemon to write wins: give every daemon the same breaker: settings).
--
-- A row whose config is already as given is not written at all: daemons
-- reconnect and reload often and almost never change a breaker, and a
-- write would take the hot row's lock, queue behind the reports of every
-- other daemon, and leave a dead version behind. The NOT EXISTS skips
-- those rows without locking them; ON CONFLICT's WHERE covers a row that
-- another daemon inserted or changed meanwhile (it is locked then, not
-- written). Rows go in kind order, the order every statement that locks
-- several breakers takes them in (sql/breaker_report.sql): two daemons
-- cannot deadlock.
INSERT INTO dispatch.breakers AS b (kind, failures, window_ms, open_for_ms, open_max_ms)
SELECT c.kind, c.failures, c.window_ms, c.open_for_ms, c.open_max_ms
  FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::bigint[])
       AS c(kind, failures, window_ms, open_for_ms, open_max_ms)
 WHERE NOT EXISTS (SELECT 1 FROM dispatch.breakers AS o
                    WHERE o.kind = c.kind
                      AND (o.failures, o.window_ms, o.open_for_ms, o.open_max_ms)
                          = (c.failures, c.window_ms, c.open_for_ms, c.open_max_ms))
 ORDER BY c.kind
    ON CONFLICT (kind) DO UPDATE
   SET failures = excluded.failures,
       window_ms = excluded.window_ms,
       open_for_ms = excluded.open_for_ms,
       open_max_ms = excluded.open_max_ms
 WHERE (b.failures, b.window_ms, b.open_for_ms, b.open_max_ms)
       IS DISTINCT FROM (excluded.failures, excluded.window_ms, excluded.open_for_ms, excluded.open_max_ms)
