-- `pgdispatch resume QUEUE`: $1 the queue.
SELECT true, CASE WHEN dispatch.resume($1) THEN format('queue %s resumed', $1)
                  ELSE format('queue %s was not paused', $1) END
