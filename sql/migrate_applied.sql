-- Migrations already applied, oldest first.
SELECT version, checksum FROM dispatch.schema_migrations ORDER BY version
