-- A SQL handler's timeout ($1 milliseconds), for its transaction only.
SELECT set_config('statement_timeout', $1, true)
