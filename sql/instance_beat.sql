-- This daemon is alive: its row in dispatch.instances (migrations/0008)
-- written afresh, on every (re)connect and every lease tick. $1 name, $2
-- host, $3 pid, $4 version, $5 ms since the process started, $6 queues,
-- $7 concurrency, $8 tasks running, $9 state ('running' or 'stopping'),
-- $10 lease in ms. An upsert: a row deleted meanwhile (gone for a day
-- while this daemon was cut off, or by hand) comes back.
--
-- Then the housekeeping any daemon does for the others, cheap on a table
-- of a few rows: rows not seen for three of their own leases are marked
-- gone (their daemon was killed or cut off), and rows gone for a day are
-- deleted. SKIP LOCKED: two daemons doing it at once never wait on each
-- other. The daemon's own row is left out of both: one statement must not
-- change a row twice.
WITH me AS (
    INSERT INTO dispatch.instances AS i
           (name, host, pid, version, started_at, last_seen, queues, concurrency, running, state, lease_ms)
    VALUES ($1, $2, $3::int, $4, now() - $5::bigint * interval '1 millisecond', now(), $6::text[],
            $7::int, $8::int, $9, $10::int)
        ON CONFLICT (name, host, pid) DO UPDATE
       SET version = excluded.version,
           last_seen = excluded.last_seen,
           queues = excluded.queues,
           concurrency = excluded.concurrency,
           running = excluded.running,
           state = excluded.state,
           lease_ms = excluded.lease_ms
    RETURNING 1
), silent AS (
    SELECT i.name, i.host, i.pid
      FROM dispatch.instances AS i
     WHERE i.state <> 'gone'
       AND i.last_seen < now() - 3 * i.lease_ms * interval '1 millisecond'
       AND (i.name, i.host, i.pid) <> ($1, $2, $3::int)
       FOR UPDATE SKIP LOCKED
), gone AS (
    UPDATE dispatch.instances AS i
       SET state = 'gone'
      FROM silent
     WHERE (i.name, i.host, i.pid) = (silent.name, silent.host, silent.pid)
    RETURNING i.name, i.pid
), old AS (
    SELECT i.name, i.host, i.pid
      FROM dispatch.instances AS i
     WHERE i.state = 'gone'
       AND i.last_seen < now() - interval '1 day'
       AND (i.name, i.host, i.pid) <> ($1, $2, $3::int)
       FOR UPDATE SKIP LOCKED
), removed AS (
    DELETE FROM dispatch.instances AS i
     USING old
     WHERE (i.name, i.host, i.pid) = (old.name, old.host, old.pid)
    RETURNING 1
)
SELECT 'gone' AS what, gone.name || '#' || gone.pid AS instance FROM gone
UNION ALL
SELECT 'removed', count(*)::text FROM removed
UNION ALL
SELECT 'me', count(*)::text FROM me
