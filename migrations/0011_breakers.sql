-- 0011: circuit breakers (issue 13). A handler with `breaker:` in its
-- config stops being claimed, by every daemon, while the service behind it
-- keeps failing: after `failures` counted failures within `window` with no
-- success between them the kind's breaker opens; no daemon claims the kind
-- for `open_for`; then one daemon lets one probe task through (half-open);
-- its success closes the breaker, its failure opens it again for twice as
-- long, up to `open_max`. Tasks of an open kind stay pending and spend no
-- attempt (README, "Circuit breakers"; docs/design.md, "Breakers").
--
-- The state lives here, not in a daemon's memory, so that one daemon's
-- opening stops them all within one sync period (sql/breaker_sync.sql) and
-- a restart forgets nothing. The daemons write it with statements of their
-- own (sql/breaker_report.sql, sql/breaker_probe.sql,
-- sql/breaker_config.sql), never from the claim or outcome statements: a
-- breaker row is one hot row per kind, and a task's outcome must never
-- wait for it (docs/design.md, "Breakers").
--
-- Safe on a database holding tasks: a new table, a view and two
-- functions; nothing existing is locked or rewritten. Run `pgdispatch
-- roles` afterwards: the new objects' grants are there.

-- Breakers ------------------------------------------------------------------

-- One row per kind that has a breaker in some daemon's config (written at
-- the daemon's connect and reload, sql/breaker_config.sql), or that an
-- operator opened by hand (dispatch.breaker_trip). A kind without a row
-- has a closed breaker, or none.
--
-- The config columns are the last writer's: daemons with different configs
-- for one kind take turns overwriting them, so give every daemon the same
-- breaker: settings. Their defaults are the config's, so that
-- breaker_trip() can make a row for a kind no daemon has registered yet.
--
-- recent holds the counted failures since the last success, each as the
-- time it was reported, newest last, trimmed on every report to those
-- within window_ms and to the newest `failures` of them: so the row stays
-- small however long a service is down, and "N failures within the
-- window, no success between them" is cardinality(recent) >= failures.
-- A table of a few rows updated often: fillfactor 50 leaves room on each
-- page for the next version of a row, so updates stay HOT (no index
-- besides the key, which never changes).
CREATE TABLE dispatch.breakers (
    kind        text PRIMARY KEY,
    state       text NOT NULL DEFAULT 'closed',
    recent      timestamptz[] NOT NULL DEFAULT '{}',
    -- config (breaker: of the kind's handler)
    failures    int NOT NULL DEFAULT 5,             -- opens after this many within window_ms
    window_ms   bigint NOT NULL DEFAULT 30000,
    open_for_ms bigint NOT NULL DEFAULT 30000,      -- the first opening's length
    open_max_ms bigint NOT NULL DEFAULT 600000,     -- the cap of the doubling
    -- while open or half-open
    open_ms     bigint,                             -- this opening's length; NULL: until reset
    opened_at   timestamptz,
    open_until  timestamptz,                        -- 'infinity': opened by hand until reset
    probe_by    text,                               -- half-open: the instance (name#pid) holding the probe
    probe_until timestamptz,                        -- ... until then; after it, any daemon may take it
    last_error  text,                               -- the latest counted failure's error
    changed_at  timestamptz NOT NULL DEFAULT now(), -- the last change of state (or probe taken)
    changed_by  text,                               -- by whom: an instance, or the operator's role
    CONSTRAINT breakers_state CHECK (state IN ('closed', 'open', 'half_open')),
    CONSTRAINT breakers_config CHECK (failures >= 1 AND window_ms > 0 AND open_for_ms > 0
                                      AND open_max_ms >= open_for_ms),
    -- What each state needs, so that a statement that forgot a column
    -- fails loudly instead of leaving a breaker no probe can ever take.
    CONSTRAINT breakers_open CHECK (state <> 'open' OR (opened_at IS NOT NULL AND open_until IS NOT NULL)),
    CONSTRAINT breakers_half_open CHECK (state <> 'half_open' OR (probe_by IS NOT NULL AND probe_until IS NOT NULL))
) WITH (fillfactor = 50);

COMMENT ON TABLE dispatch.breakers IS
    'Circuit breakers, one row per kind whose handler has breaker: in a daemon''s config (or that '
    'an operator opened): closed (claimed as usual), open (claimed by no daemon until open_until) or '
    'half_open (one probe task let through by the daemon probe_by). Read dispatch.breaker_status; '
    'change by hand with dispatch.breaker_reset() and dispatch.breaker_trip().';

-- For people: seconds instead of milliseconds, and only the failures that
-- still count (recent may hold some older than the window until the next
-- report trims them). seconds_left: until open_until while open (NULL
-- when open until reset: an epoch cannot be taken of infinity), until the
-- probe lapses while half-open.
CREATE VIEW dispatch.breaker_status AS
SELECT kind,
       state,
       (SELECT count(*) FROM unnest(b.recent) AS t
         WHERE t > now() - b.window_ms * interval '1 millisecond')::int AS failures_recorded,
       failures AS opens_after,
       trim_scale(window_ms / 1000.0) AS window_s,
       trim_scale(open_ms / 1000.0) AS open_s,
       opened_at,
       open_until,
       CASE WHEN state = 'open' AND open_until <> 'infinity'
            THEN round(greatest(extract(epoch FROM open_until - now()), 0), 1)
            WHEN state = 'half_open'
            THEN round(greatest(extract(epoch FROM probe_until - now()), 0), 1)
       END AS seconds_left,
       probe_by,
       last_error,
       changed_at,
       changed_by
  FROM dispatch.breakers AS b
 ORDER BY kind;

COMMENT ON VIEW dispatch.breaker_status IS
    'Each kind''s circuit breaker: its state (closed, open, half_open), the failures that count '
    'now (failures_recorded) against how many open it (opens_after) within window_s, this '
    'opening''s length (open_s: doubles after each failed probe), when it opened and until when '
    '(infinity: opened by hand until reset), seconds_left of that (or of the probe while '
    'half_open; NULL until reset), the daemon holding the probe, the latest error counted, and '
    'who changed the state last. Close one with dispatch.breaker_reset(kind).';

-- Admin functions -----------------------------------------------------------

-- SECURITY DEFINER, a fixed search_path and qualified names, EXECUTE
-- revoked from PUBLIC below and granted to dispatch_admin by sql/roles.sql,
-- as the admin functions of 0007 and 0008: an admin needs no write
-- privilege on the table. changed_by is session_user, the operator, not
-- current_user, which inside the function is the owner. Daemons notice
-- within one sync period (sql/breaker_sync.sql, at the lease rhythm).

-- Closes kind's breaker: its tasks are claimed again, and the counted
-- failures are forgotten. true when it was open or half-open; false when
-- it was closed already (its failures forgotten all the same) or there is
-- no breaker of that kind.
CREATE FUNCTION dispatch.breaker_reset(kind text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    was text;
BEGIN
    -- Locked first, so a daemon's report waiting on the row computes from
    -- the closed row afterwards (sql/breaker_report.sql).
    SELECT b.state INTO was FROM dispatch.breakers AS b WHERE b.kind = breaker_reset.kind FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE dispatch.breakers AS b
       SET state = 'closed', recent = '{}', open_ms = NULL, opened_at = NULL, open_until = NULL,
           probe_by = NULL, probe_until = NULL,
           changed_at = CASE WHEN was <> 'closed' THEN now() ELSE b.changed_at END,
           changed_by = CASE WHEN was <> 'closed' THEN session_user ELSE b.changed_by END
     WHERE b.kind = breaker_reset.kind
       AND (was <> 'closed' OR b.recent <> '{}');
    RETURN was <> 'closed';
END
$$;

COMMENT ON FUNCTION dispatch.breaker_reset(text) IS
    'Closes a kind''s circuit breaker by hand: every daemon claims its tasks again within one sync '
    'period, and its counted failures are forgotten. Returns true if it was open or half-open, '
    'false if it was closed already or the kind has no breaker.';

-- Opens kind's breaker by hand for open_for (NULL: until
-- dispatch.breaker_reset()): no daemon claims its tasks meanwhile.
-- Replaces any opening under way, and a probe in flight (its verdict no
-- longer counts). A kind without a row gets one, with the default config
-- (a daemon that has a breaker for it writes its own at its next start or
-- reload). true when it was not open before.
CREATE FUNCTION dispatch.breaker_trip(kind text, open_for interval DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    was text;
BEGIN
    IF breaker_trip.kind IS NULL THEN
        RAISE EXCEPTION 'breaker_trip: kind must not be NULL' USING ERRCODE = '22023';
    END IF;
    IF breaker_trip.open_for IS NOT NULL AND breaker_trip.open_for <= interval '0' THEN
        RAISE EXCEPTION 'breaker_trip: open_for must be a positive interval (or NULL: until reset), not %',
            breaker_trip.open_for USING ERRCODE = '22023';
    END IF;
    -- A missing row first (a no-op when it exists), then the row locked,
    -- so that the previous state read is the one replaced.
    INSERT INTO dispatch.breakers AS b (kind) VALUES (breaker_trip.kind)
        ON CONFLICT ON CONSTRAINT breakers_pkey DO NOTHING;
    SELECT b.state INTO STRICT was FROM dispatch.breakers AS b WHERE b.kind = breaker_trip.kind FOR UPDATE;
    UPDATE dispatch.breakers AS b
       SET state = 'open', recent = '{}',
           open_ms = (extract(epoch FROM breaker_trip.open_for) * 1000)::bigint,
           opened_at = now(),
           open_until = coalesce(now() + breaker_trip.open_for, 'infinity'),
           probe_by = NULL, probe_until = NULL,
           changed_at = now(), changed_by = session_user
     WHERE b.kind = breaker_trip.kind;
    RETURN was <> 'open';
END
$$;

COMMENT ON FUNCTION dispatch.breaker_trip(text, interval) IS
    'Opens a kind''s circuit breaker by hand for open_for (NULL, the default: until '
    'dispatch.breaker_reset()): no daemon claims its tasks meanwhile. Afterwards one probe task '
    'decides, as for a breaker that opened itself. Returns true if it was not open before.';

REVOKE EXECUTE ON FUNCTION dispatch.breaker_reset(text), dispatch.breaker_trip(text, interval) FROM PUBLIC;
