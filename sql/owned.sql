-- Which of $1 ids (with $2 attempts) are still this instance's ($3)
-- claims. A plain read: it never waits on a row lock.
SELECT t.id
  FROM dispatch.tasks AS t
  JOIN unnest($1::bigint[], $2::int[]) AS o(id, attempts) ON t.id = o.id
 WHERE t.status = 'in_progress'
   AND t.locked_by = $3
   AND t.attempts = o.attempts
