-- calo_recon install script, assembled by the Makefile from sql/install/*.sql.
-- Every object is schema-qualified; functions written in SQL or PL/pgSQL pin
-- their search_path, so a hostile search_path changes nothing computed here.

\echo Use "CREATE EXTENSION calo_recon" to load this file. \quit

COMMENT ON SCHEMA calo_recon IS
  'calo_recon: wallet-sync log ingestion, balance reconciliation, anomaly scoring and finance reports';

-- Nothing in the extension is granted to PUBLIC: see README "Roles".
REVOKE ALL ON SCHEMA calo_recon FROM PUBLIC;
