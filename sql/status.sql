-- `pgdispatch status`, first part: one line per queue, from the
-- queue_stats view. due = pending and due now; oldest_due_s is how long
-- the oldest due task has waited, in seconds (it grows when the daemons
-- fall behind).
SELECT queue,
       coalesce(sum(count) FILTER (WHERE status = 'pending'), 0) - coalesce(sum(scheduled), 0) AS due,
       coalesce(sum(scheduled), 0) AS scheduled,
       coalesce(sum(count) FILTER (WHERE status = 'in_progress'), 0) AS running,
       coalesce(sum(count) FILTER (WHERE status = 'complete'), 0) AS complete,
       coalesce(sum(count) FILTER (WHERE status = 'failed'), 0) AS failed,
       coalesce(sum(count) FILTER (WHERE status = 'cancelled'), 0) AS cancelled,
       coalesce(round(extract(epoch FROM max(oldest_due_age))::numeric, 1)::text, '') AS oldest_due_s,
       CASE WHEN bool_or(paused) THEN 'paused' ELSE '' END AS state
  FROM dispatch.queue_stats
 GROUP BY queue
 ORDER BY queue
