-- This instance ($1) is busy (its last claim came back full) or stopping:
-- producers need not notify on its account.
DELETE FROM dispatch.sleepers WHERE instance = $1
