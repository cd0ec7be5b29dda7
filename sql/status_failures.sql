-- `pgdispatch status`: the latest failed attempts (dispatch.failures),
-- their errors cut to one short line.
SELECT task_id, kind, queue, attempt, outcome,
       to_char(failed_at, 'YYYY-MM-DD HH24:MI:SS') AS failed_at,
       left(regexp_replace(coalesce(error, ''), '\s+', ' ', 'g'), 60) AS error
  FROM dispatch.failures
 ORDER BY failed_at DESC
 LIMIT 5
