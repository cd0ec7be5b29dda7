-- The ledger of applied migrations. It must exist before the first
-- migration runs, so it is created here (idempotently, under the migrate
-- lock) rather than by a migration. The schema is created with it;
-- 0001_init.sql fills it.
CREATE SCHEMA IF NOT EXISTS dispatch;
CREATE TABLE IF NOT EXISTS dispatch.schema_migrations (
    version    text PRIMARY KEY,        -- file name without .sql: 0001_init
    checksum   text NOT NULL,           -- sha256 of the file, hex
    applied_at timestamptz NOT NULL DEFAULT now()
);
