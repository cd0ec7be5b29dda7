-- `pgdispatch status`: the queue_stats view, the age in seconds.
SELECT queue, status, count,
       coalesce(round(extract(epoch FROM oldest_due_age)::numeric, 1)::text, '')
  FROM dispatch.queue_stats
