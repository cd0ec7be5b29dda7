-- The claim's last part: the rows in room become in_progress for this
-- instance ($3), with one more attempt, a lease of $4 milliseconds and the
-- claim token $6 (migrations/0005_claim_token.sql). The update takes the
-- ids as one array: joined to room instead, the planner cannot tell how few
-- rows come and may hash-join the whole table.
claimed AS (
    UPDATE dispatch.tasks AS t
       SET status = 'in_progress',
           attempts = t.attempts + 1,
           locked_by = $3,
           claim_token = $6,
           lease_expires_at = now() + $4::bigint * interval '1 millisecond',
           started_at = now()
     WHERE t.id = ANY (ARRAY(SELECT id FROM room))
    RETURNING t.id, t.queue, t.kind, t.payload, t.attempts, coalesce(t.max_attempts, 0) AS max_attempts
)
