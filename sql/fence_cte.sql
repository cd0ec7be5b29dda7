-- The fence, shared by outcomes.sql and renew.sql
-- (included at their --@include line by dispatcher/embed_gen.sh). Given a
-- CTE o of claims (id, token), it locks the rows that are still those
-- claims: in progress, with the claim's token
-- (migrations/0005_claim_token.sql). SKIP LOCKED: a row another session
-- holds (an operator's SELECT ... FOR UPDATE, this daemon's own SQL
-- handler's transaction) is left out, never waited for; the statement
-- reports it as locked, and the daemon keeps the claim and tries again.
mine AS MATERIALIZED (
    SELECT t.id, o.token
      FROM dispatch.tasks AS t
      JOIN o ON t.id = o.id AND t.claim_token = o.token
     WHERE t.status = 'in_progress'
       FOR NO KEY UPDATE OF t SKIP LOCKED
)
