-- This process ($1: instance name and pid) is busy (its last claim came back full) or stopping:
-- producers need not notify on its account.
DELETE FROM dispatch.sleepers WHERE instance = $1
