-- The successes riding along with a source's claim
-- (source_complete_and_claim.sql includes this): $6 the daemon's ids for
-- them (only handed back, to match the rows to its outcomes), $7 the rows'
-- keys, $8 the claim tokens, $9 results (JSON text, NULL allowed). As
-- sql/complete_cte.sql: fenced on the token, and without locking first:
-- a user row someone else holds makes the statement wait for the work
-- connection's lock_timeout, and fail whole (55P03); the daemon then
-- writes them through source_outcomes.sql, which skips locked rows. The
-- side rows go, and each row takes the complete value (and mapped
-- columns: :set_done). Defines o, d and done (the rows written).
o AS (
    SELECT * FROM unnest($6::bigint[], $7::text[], $8::bigint[], $9::text[]) AS o(id, key, token, result)
), d AS (
    -- key = ANY: the primary key finds each row (a join alone may be
    -- planned as a scan of the side table, dead rows and all).
    DELETE FROM dispatch.source_rows AS s
     USING o
     WHERE s.source = $1 AND s.key = ANY ($7::text[])
       AND s.key = o.key AND s.claim_token = o.token
    RETURNING o.id, s.key, o.token, o.result
), done AS (
    UPDATE :"schema".:"table" AS t
       SET :"status" = :'complete' :set_done
      FROM d
     WHERE t.:"key" = CAST(d.key AS :keytype)
       AND t.:"status" = :'in_progress'
    RETURNING d.id, d.token
)
