-- `pgdispatch status`: the longest-running tasks (dispatch.running).
SELECT id, kind, queue, instance, attempt,
       round(extract(epoch FROM running_for)::numeric, 1) || 's' AS running_for,
       coalesce(round(extract(epoch FROM lease_left)::numeric, 1) || 's', '') AS lease_left
  FROM dispatch.running
 ORDER BY started_at, id   -- started_at, not the text column running_for
 LIMIT 10
