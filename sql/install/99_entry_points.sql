-- Last part of the install (and last step of every update script, before
-- reapply_grants()): exactly the routines listed in
-- calo_recon.definer_entry_points (73_roles.sql) run as the extension owner,
-- with search_path = pg_catalog, pg_temp and no EXECUTE for PUBLIC.
SELECT pg_catalog.count(*) FROM calo_recon.harden_entry_points();
