-- Milliseconds until the earliest pending task of queue $1 (not of a kind
-- in $2) is due: 0 when one is due now, NULL when none is pending. The
-- database's clock decides, never the host's.
--
-- tasks_claim_idx leads with priority, so a plain min(run_at) would read
-- every pending row of the queue. Instead, walk the distinct priorities
-- (a loose index scan: one index probe each) and take the earliest run_at
-- within each (another probe). Cost grows with the number of distinct
-- priorities in use, not with the backlog.
--
-- run_at may be 'infinity' or '-infinity' (valid timestamptz values a
-- producer can write), and subtracting either fails (22008). An infinite
-- task is never due, so it sets no timer: the per-priority probe skips it
-- with a range bound on run_at, which the index serves as it serves the
-- ORDER BY. A '-infinity' task is due now, and is answered 0 by comparison
-- before any subtraction.
--
-- A paused queue (dispatch.queue_pauses) answers NULL, as if nothing were
-- pending: its due tasks may not be claimed, and answering 0 would have
-- an idle daemon ask again and again. The anchor of the walk checks it, so
-- a paused queue costs one probe of queue_pauses. dispatch.resume()
-- notifies the queue, which wakes the daemons.
--
-- A keyed task behind its key's head (migrations/0012) is not due: the
-- claim would pass it over, and answering 0 for it would have an idle
-- daemon ask again and again. Its head's end frees the slot that claims it.
WITH RECURSIVE p(priority) AS (
    (SELECT priority
       FROM dispatch.tasks
      WHERE status = 'pending' AND queue = $1
        AND NOT EXISTS (SELECT 1 FROM dispatch.queue_pauses AS q WHERE q.queue = $1)
      ORDER BY priority DESC
      LIMIT 1)
    UNION ALL
    SELECT (SELECT t.priority
              FROM dispatch.tasks AS t
             WHERE t.status = 'pending' AND t.queue = $1 AND t.priority < p.priority
             ORDER BY t.priority DESC
             LIMIT 1)
      FROM p
     WHERE p.priority IS NOT NULL
)
SELECT CASE WHEN next_run_at IS NULL THEN NULL  -- greatest() would turn NULL into 0
            WHEN next_run_at <= clock_timestamp() THEN 0
            ELSE greatest(0, ceil(extract(epoch FROM next_run_at - clock_timestamp()) * 1000))::bigint
       END
  FROM (SELECT min((SELECT t.run_at
                      FROM dispatch.tasks AS t
                     WHERE t.status = 'pending' AND t.queue = $1 AND t.priority = p.priority
                       AND t.run_at < 'infinity'
                       AND t.kind <> ALL ($2::text[])
                       AND (t.order_key IS NULL
                            OR (NOT EXISTS (SELECT 1
                                              FROM dispatch.tasks AS head
                                             WHERE head.order_key = t.order_key
                                               AND head.status = 'pending'
                                               AND head.id < t.id)
                                AND NOT EXISTS (SELECT 1
                                                  FROM dispatch.tasks AS running
                                                 WHERE running.order_key = t.order_key
                                                   AND running.status = 'in_progress')))
                     ORDER BY t.run_at
                     LIMIT 1)) AS next_run_at
          FROM p
         WHERE p.priority IS NOT NULL) AS n
