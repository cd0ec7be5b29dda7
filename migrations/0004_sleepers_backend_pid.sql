-- 0004: forget registrations of daemons that died.
--
-- A daemon killed while registered in dispatch.sleepers (0003) left its
-- rows behind, and producers kept notifying that queue, paying the NOTIFY
-- commit lock for nobody, until an instance of the same name ran again.
-- Each row now records the backend that registered it; a registration
-- (sql/sleep_register.sql) first removes rows whose backend is gone. The
-- backend, not the daemon's pid: PostgreSQL can see its own sessions, and
-- a daemon's connection dies with the daemon.
--
-- Rows registered before this migration have no backend and are left to
-- their daemons: any of them may still be waiting for a notification.
ALTER TABLE dispatch.sleepers ADD COLUMN backend_pid int;
ALTER TABLE dispatch.sleepers ALTER COLUMN backend_pid SET DEFAULT pg_backend_pid();
