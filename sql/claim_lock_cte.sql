-- The claim's first part, shared by claim*.sql and complete_and_claim*.sql
-- (dispatcher/embed_gen.sh includes it at their --@include line; --print
-- shows a statement whole). It locks up to $2 due tasks of queue $1, except
-- kinds in $5 (at their concurrency limit), as the CTE c.
--
-- Shape: the locking SELECT sits in a CTE, which PostgreSQL never inlines,
-- so it runs once and locks at most $2 rows. The tempting
-- `WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` can be planned
-- as a nested loop that reruns the subquery per row and claims far more
-- than n (docs/postgres-notes.md, "The claim"). status = 'pending' is a
-- literal so the partial index tasks_claim_idx matches at plan time; one
-- queue per call (queue = $1, not = ANY) keeps the index order usable, so
-- the claim stops after $2 rows whatever the backlog. FOR NO KEY UPDATE
-- does not block foreign keys that reference tasks.
--
-- A paused queue (dispatch.queue_pauses, migrations/0007_operations.sql)
-- gives nothing. The NOT EXISTS names no column of tasks, so the planner
-- runs it once per statement (an InitPlan feeding a one-time filter) and
-- reads no index entry when the queue is paused; otherwise the plan is the
-- same index scan as without it.
--
-- A task with an order_key (migrations/0012) is taken only at the head of
-- its key: no task of the key in progress, none with a smaller id pending.
-- The check sits under an OR on purpose: a correlated NOT EXISTS at the
-- top of the WHERE would be turned into an anti-join over the whole
-- table, while under the OR it stays a per-row subplan that runs only for
-- keyed rows (two probes, one of each small partial index) and is
-- skipped for the rest. Blocked rows of a key are passed over by every
-- claim until their head ends: a cost that grows with the keyed backlog
-- that is due.
c AS MATERIALIZED (
    SELECT id, kind, priority, run_at
      FROM dispatch.tasks
     WHERE status = 'pending'
       AND queue = $1
       AND run_at <= now()
       AND kind <> ALL ($5::text[])
       AND NOT EXISTS (SELECT 1 FROM dispatch.queue_pauses AS p WHERE p.queue = $1)
       AND (order_key IS NULL
            OR (NOT EXISTS (SELECT 1
                              FROM dispatch.tasks AS head
                             WHERE head.order_key = tasks.order_key
                               AND head.status = 'pending'
                               AND head.id < tasks.id)
                AND NOT EXISTS (SELECT 1
                                  FROM dispatch.tasks AS running
                                 WHERE running.order_key = tasks.order_key
                                   AND running.status = 'in_progress')))
     ORDER BY priority DESC, run_at, id
     LIMIT $2
       FOR NO KEY UPDATE SKIP LOCKED
)
