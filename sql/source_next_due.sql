-- Milliseconds until a row of a source is due, as sql/next_due.sql for a
-- queue: 0 when one is due now (the claim's own condition), else the end
-- of the nearest backoff (or a mapped run_at: :next_run_at), NULL when
-- nothing is pending. $1 the source's name.
SELECT CASE WHEN EXISTS (SELECT 1
                           FROM :"schema".:"table" AS t
                          WHERE t.:"status" = :'pending' :due
                            AND NOT EXISTS (SELECT 1 FROM dispatch.source_rows AS b
                                             WHERE b.source = $1 AND b.key = t.:"key"::text
                                               AND b.not_before > now()))
            THEN 0
            ELSE (SELECT CASE WHEN n.at IS NULL THEN NULL  -- greatest() would turn NULL into 0
                              ELSE greatest(0, ceil(extract(epoch FROM n.at - clock_timestamp()) * 1000))::bigint
                         END
                    FROM (SELECT least((SELECT min(b.not_before) FROM dispatch.source_rows AS b
                                         WHERE b.source = $1 AND b.not_before > now()
                                           AND b.claim_token IS NULL),
                                       :next_run_at) AS at) AS n)
       END
