-- A source's claim (docs/sources.md), shared by source_claim.sql and
-- source_complete_and_claim.sql (included at their --@include line). A
-- template: the daemon fills the psql variables once per source at
-- startup (dispatcher/source.c): :"name" an identifier quoted by libpq,
-- :'name' a literal quoted by libpq, :name a fragment built from quoted
-- parts. For the seed table of docs/sources.md the fragments are
--   :due ''   :order_by t."id"   :payload row_to_json(t)   :set_claim ''
--   :attempts_ret NULL::int   :attempts_mapped false
--
-- $1 the source's name, $2 the limit, $3 locked_by (instance#pid), $4 the
-- lease in milliseconds, $5 the claim token.
--
-- Shape as sql/claim_lock_cte.sql: the locking SELECT in a MATERIALIZED
-- CTE, so it runs once and locks at most $2 rows, FOR NO KEY UPDATE
-- SKIP LOCKED so a row someone else holds is passed over, and the status
-- value a literal, so the table's partial index (WHERE status = 'pending')
-- matches at plan time: a parameter would not in a generic plan. A row
-- waiting out a backoff has a side row with not_before in the future
-- (dispatch.source_rows, migrations/0010_sources.sql). The first NOT
-- EXISTS names no column of t: it runs once per statement, and when no
-- row of the source is in backoff (the usual case) the per-row probe of
-- the second never runs (it cost a tenth of the claim's time).
--
-- Then the rows become in_progress (and mapped columns current), and each
-- gets its side row with the claim token, the lease and the attempt count:
-- one more than the side row had, 1 for a row never tried or finished
-- before (an operator set it back to pending), or the mapped attempts
-- column's new value when the table keeps its own count.
c AS MATERIALIZED (
    SELECT t.:"key" AS key
      FROM :"schema".:"table" AS t
     WHERE t.:"status" = :'pending' :due
       AND (NOT EXISTS (SELECT 1 FROM dispatch.source_rows AS b0
                         WHERE b0.source = $1 AND b0.not_before > now())
            OR NOT EXISTS (SELECT 1 FROM dispatch.source_rows AS b
                            WHERE b.key = t.:"key"::text AND b.source = $1 AND b.not_before > now()))
     ORDER BY :order_by
     LIMIT $2
       FOR NO KEY UPDATE OF t SKIP LOCKED
), claimed AS (
    UPDATE :"schema".:"table" AS t
       SET :"status" = :'in_progress' :set_claim
     WHERE t.:"key" = ANY (ARRAY(SELECT key FROM c))
    RETURNING t.:"key"::text AS key, :attempts_ret AS attempts, :payload AS payload
), side AS (
    INSERT INTO dispatch.source_rows AS s (source, key, claim_token, locked_by, lease_expires_at, attempts,
                                           started_at)
    SELECT $1, claimed.key, $5, $3, now() + $4::bigint * interval '1 millisecond',
           coalesce(claimed.attempts, 1), now()
      FROM claimed
    ON CONFLICT (source, key) DO UPDATE
       SET claim_token = excluded.claim_token,
           locked_by = excluded.locked_by,
           lease_expires_at = excluded.lease_expires_at,
           started_at = excluded.started_at,
           not_before = NULL,
           finished_at = NULL,
           attempts = CASE WHEN :attempts_mapped THEN excluded.attempts
                           WHEN s.finished_at IS NULL THEN s.attempts + 1
                           ELSE 1 END
    RETURNING s.key, s.attempts
)
