-- The config-push example's table: the application's own, as the team
-- that pushes configurations has it. pgdispatch adds no column and no
-- trigger to it; it needs only the two things at the end (an index and a
-- few grants).
--
--   psql -v daemon_role=NAME -f examples/config-push/schema.sql
--
-- NAME is the login role the daemon connects as (a member of
-- dispatch_worker, see `pgdispatch roles`).

CREATE TYPE configuration_update_status AS ENUM ('pending', 'in_progress', 'complete', 'failed');

CREATE TABLE configuration_update (
    id serial PRIMARY KEY,
    content jsonb,
    status configuration_update_status,
    destination inet
);

-- The application's own wake-up: one notification per new row. The
-- daemon LISTENs on this channel (pgdispatch.yaml: channel) and takes the
-- payload only as a hint; it reads the table itself.
CREATE FUNCTION configuration_update_created() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('configuration_update_created', NEW.id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER configuration_update_created
    AFTER INSERT ON configuration_update
    FOR EACH ROW EXECUTE FUNCTION configuration_update_created();

-- What pgdispatch needs. The claim reads the pending rows in key order:
-- this partial index holds exactly those (the daemon warns at startup,
-- with this statement, when it is missing). On a live table, add
-- CONCURRENTLY.
CREATE INDEX configuration_update_pgdispatch_claim_idx
    ON configuration_update (id) WHERE status = 'pending';

-- The daemon's role reads the rows and writes their status; nothing else.
-- `pgdispatch check-config -c pgdispatch.yaml -d CONNINFO` names any grant
-- that is missing.
GRANT USAGE ON SCHEMA public TO :"daemon_role";
GRANT SELECT, UPDATE (status) ON configuration_update TO :"daemon_role";
