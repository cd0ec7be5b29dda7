-- Runs in the same transaction as the migration itself: a file is recorded
-- exactly when its changes commit.
INSERT INTO dispatch.schema_migrations (version, checksum) VALUES ($1, $2)
