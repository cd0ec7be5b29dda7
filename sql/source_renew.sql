-- Extends the leases of a source's rows this daemon holds, as
-- sql/renew.sql does for tasks: $1 the source's name, $2 the daemon's ids
-- for the rows (handed back with each lost claim), $3 the rows' keys, $4
-- claim tokens, $5 the lease in milliseconds. Only the side row is
-- written (the user's table is read, not locked or updated: a renewal
-- fires none of its triggers, and a mapped lease_expires_at column keeps
-- the value the claim wrote). A side row someone else holds is skipped
-- and still ours.
--
-- Rows back: only the claims lost: id, token, and whether the row's status
-- was changed by someone else (then the reason names the new value, and
-- the handler is stopped as for a cancel).
WITH o AS (
    SELECT * FROM unnest($2::bigint[], $3::text[], $4::bigint[]) AS o(id, key, token)
), mine AS MATERIALIZED (
    SELECT s.key, o.token
      FROM o
      JOIN dispatch.source_rows AS s
        ON s.source = $1 AND s.key = ANY ($3::text[]) AND s.key = o.key AND s.claim_token = o.token
     WHERE EXISTS (SELECT 1 FROM :"schema".:"table" AS t
                    WHERE t.:"key" = CAST(s.key AS :keytype) AND t.:"status" = :'in_progress')
       FOR NO KEY UPDATE OF s SKIP LOCKED
), u AS (
    UPDATE dispatch.source_rows AS s
       SET lease_expires_at = now() + $5::bigint * interval '1 millisecond'
      FROM mine
     WHERE s.source = $1 AND s.key = mine.key
    RETURNING s.key, s.claim_token
)
SELECT o.id, o.token, t.:"status" IS NOT NULL AS cancelled,
       'status set to ' || t.:"status"::text || ' by another session' AS reason
  FROM o
  LEFT JOIN dispatch.source_rows AS s ON s.source = $1 AND s.key = o.key AND s.claim_token = o.token
  LEFT JOIN :"schema".:"table" AS t ON t.:"key" = CAST(s.key AS :keytype)
 WHERE NOT EXISTS (SELECT 1 FROM u WHERE u.key = o.key AND u.claim_token = o.token)
   AND (s.key IS NULL OR t.:"status" IS DISTINCT FROM :'in_progress')
