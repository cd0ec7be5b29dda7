-- `pgdispatch pause QUEUE`: $1 the queue. Pausing a paused queue is no
-- error: the queue ends paused either way.
SELECT true, CASE WHEN dispatch.pause($1) THEN format('queue %s paused: no daemon claims from it until resumed', $1)
                  ELSE format('queue %s was already paused', $1) END
