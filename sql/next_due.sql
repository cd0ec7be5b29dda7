-- Milliseconds until the earliest pending task of queue $1 (not of a kind
-- in $2) is due: 0 when one is due now, NULL when none is pending. The
-- database's clock decides, never the host's.
SELECT greatest(0, ceil(extract(epoch FROM min(run_at) - clock_timestamp()) * 1000))::bigint
  FROM dispatch.tasks
 WHERE status = 'pending'
   AND queue = $1
   AND kind <> ALL ($2::text[])
