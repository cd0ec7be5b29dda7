-- `pgdispatch status`: each source's rows per status (docs/sources.md),
-- from dispatch.source_stats(), which counts every row of each table:
-- `pgdispatch status` runs it under a statement_timeout. backoff counts
-- pending rows waiting out a retry's backoff; other, values that are none
-- of the four. No rows when no daemon has registered a source.
SELECT source,
       coalesce(sum(count) FILTER (WHERE status = 'pending'), 0) AS pending,
       coalesce(sum(count) FILTER (WHERE status = 'backoff'), 0) AS backoff,
       coalesce(sum(count) FILTER (WHERE status = 'in_progress'), 0) AS in_progress,
       coalesce(sum(count) FILTER (WHERE status = 'complete'), 0) AS complete,
       coalesce(sum(count) FILTER (WHERE status = 'failed'), 0) AS failed,
       coalesce(sum(count) FILTER (WHERE status = 'other'), 0) AS other,
       coalesce(max(status) FILTER (WHERE status LIKE 'error:%'), '') AS error
  FROM dispatch.source_stats()
 GROUP BY source
 ORDER BY source
