-- Locks (README "Locks"; keys and order defined once, in src/glue/locks.h):
-- the writer lock serializes ingests, reconciliations and refresh(); the
-- chain locks let the chain alert of a new row see the user's previous row.
-- Internal: called by the functions and triggers below, not by users.

CREATE FUNCTION calo_recon.lock_writer() RETURNS void
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_lock_writer';
COMMENT ON FUNCTION calo_recon.lock_writer() IS
  'Internal: waits for the writer lock (ingests, reconcile, refresh) until the end of the transaction; 55P03 instead of waiting when the transaction already holds chain locks (it inserted transactions), which would invert the lock order';
REVOKE ALL ON FUNCTION calo_recon.lock_writer() FROM PUBLIC;

CREATE FUNCTION calo_recon.try_lock_writer() RETURNS boolean
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_try_lock_writer';
COMMENT ON FUNCTION calo_recon.try_lock_writer() IS
  'Internal: takes the writer lock until the end of the transaction when it is free at once; false when another session holds it';
REVOKE ALL ON FUNCTION calo_recon.try_lock_writer() FROM PUBLIC;

CREATE FUNCTION calo_recon.writer_lock_holder() RETURNS text
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_writer_lock_holder';
COMMENT ON FUNCTION calo_recon.writer_lock_holder() IS
  'Which other session holds the writer lock: "process PID (state): statement" from pg_locks and pg_stat_activity, or NULL when none does';
REVOKE ALL ON FUNCTION calo_recon.writer_lock_holder() FROM PUBLIC;

CREATE FUNCTION calo_recon.lock_user_chains(user_ids text[]) RETURNS boolean
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_lock_user_chains';
COMMENT ON FUNCTION calo_recon.lock_user_chains(text[]) IS
  'Internal: waits for the chain locks of these users (256 stripes, ascending) until the end of the transaction, so that a concurrent insert of the same user commits first and is seen; true when it had to wait';
REVOKE ALL ON FUNCTION calo_recon.lock_user_chains(text[]) FROM PUBLIC;

CREATE FUNCTION calo_recon.chain_snapshot_behind(user_ids text[]) RETURNS boolean
LANGUAGE C VOLATILE
AS 'MODULE_PATHNAME', 'calo_recon_chain_snapshot_behind';
COMMENT ON FUNCTION calo_recon.chain_snapshot_behind(text[]) IS
  'Internal to the alert trigger: under REPEATABLE READ or SERIALIZABLE, true when the transaction''s snapshot misses a committed change to the stored rows of these users that a snapshot taken now sees (the chain check would compare with a stale predecessor); false under READ COMMITTED and on a Citus cluster';
REVOKE ALL ON FUNCTION calo_recon.chain_snapshot_behind(text[]) FROM PUBLIC;
