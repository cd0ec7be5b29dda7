-- `pgdispatch status`: the daemons (dispatch.instances), live ones first.
SELECT name || '#' || pid AS instance, host, state,
       running || '/' || concurrency AS running,
       array_to_string(queues, ',') AS queues,
       round(extract(epoch FROM now() - last_seen)::numeric, 1) || 's ago' AS last_seen
  FROM dispatch.instances
 ORDER BY state = 'gone', name, pid
