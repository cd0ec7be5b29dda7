-- `pgdispatch cancel-many [KIND] [--status S] [--queue Q] [--reason TEXT]`:
-- $1 kind (NULL: any), $2 status (pending or in_progress; NULL: pending),
-- $3 reason, $4 queue (NULL: any).
SELECT true, format('%s task(s) cancelled',
                    dispatch.cancel_many($1, coalesce($2, 'pending')::dispatch.task_status, $3, $4))
