-- Catalog-wide promises of the install script: everything users see is
-- documented, only the listed, hardened entry points run with the owner's
-- privileges (README "Roles"), SQL and PL/pgSQL
-- functions pin their search_path, and PUBLIC can neither read nor write
-- wallets.
BEGIN;
CREATE EXTENSION calo_recon;
SELECT plan(11);

SELECT is_empty($$
    SELECT c.relname FROM pg_class c
    WHERE c.relnamespace = 'calo_recon'::regnamespace
      AND c.relkind IN ('r', 'v', 'm', 'p')
      AND obj_description(c.oid, 'pg_class') IS NULL $$,
  'every table and view has a comment');

SELECT is_empty($$
    SELECT c.relname || '.' || a.attname FROM pg_class c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relnamespace = 'calo_recon'::regnamespace
      AND c.relkind IN ('v', 'm')
      AND col_description(c.oid, a.attnum) IS NULL $$,
  'every view column has a comment');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'calo_recon'::regnamespace
      AND obj_description(p.oid, 'pg_proc') IS NULL $$,
  'every function and aggregate has a comment');

SELECT is_empty($$
    SELECT t.typname FROM pg_type t
    WHERE t.typnamespace = 'calo_recon'::regnamespace
      AND t.typtype = 'b' AND t.typcategory <> 'A'
      AND obj_description(t.oid, 'pg_type') IS NULL $$,
  'every base type has a comment');

SELECT is(ARRAY(SELECT DISTINCT p.proname::text FROM pg_proc p
                WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prosecdef ORDER BY 1),
          ARRAY['acknowledge_alert', 'alert_queued', 'export_dashboard', 'export_reports', 'export_workbook', 'health_figures',
                'ingest_file', 'ingest_log', 'purge', 'raise_alerts', 'reconcile', 'refresh_finish', 'refresh_start',
                'resolve_alert', 'score_transactions', 'train_model'],
          'SECURITY DEFINER: exactly the entry points that write the record or the export folder, and the health view''s counts');
SELECT set_eq($$SELECT p.proname::text FROM pg_proc p WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prosecdef$$,
              $$SELECT routine_name::text FROM calo_recon.definer_entry_points$$,
              'SECURITY DEFINER: the routines calo_recon.definer_entry_points lists, every overload');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'calo_recon'::regnamespace AND p.prosecdef
      AND (NOT coalesce(p.proconfig = ARRAY['search_path=pg_catalog, pg_temp'], false)
           OR has_function_privilege('public', p.oid, 'EXECUTE')
           OR p.proowner <> (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'calo_recon')) $$,
  'every SECURITY DEFINER function is owned by the extension owner, pins search_path = pg_catalog, pg_temp (and nothing else) and is not executable by PUBLIC');

SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_language l ON l.oid = p.prolang
    WHERE p.pronamespace = 'calo_recon'::regnamespace
      AND l.lanname IN ('sql', 'plpgsql')
      AND p.prokind <> 'p'  -- a procedure that COMMITs may not SET: it qualifies every name (ops.sql)
      AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) AS c WHERE c = 'search_path=pg_catalog, pg_temp') $$,
  'every SQL and PL/pgSQL function pins search_path = pg_catalog, pg_temp (pg_temp named last, so no type or table resolves there first)');

SELECT is_empty($$
    SELECT c.relname FROM pg_class c
    WHERE c.relnamespace = 'calo_recon'::regnamespace
      AND c.relkind IN ('r', 'v', 'm', 'p', 'S')
      AND (has_table_privilege('public', c.oid, 'SELECT')
        OR has_table_privilege('public', c.oid, 'INSERT')
        OR has_table_privilege('public', c.oid, 'UPDATE')
        OR has_table_privilege('public', c.oid, 'DELETE')) $$,
  'PUBLIC has no privilege on any table, view or sequence');

SELECT ok(NOT has_schema_privilege('public', 'calo_recon', 'USAGE'),
  'PUBLIC has no USAGE on the schema');

-- The functions PUBLIC may run compute on their arguments only (immutable
-- ones, and aggregate support functions, which take the internal state);
-- any other function, one that reads or writes tables, is revoked.
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'calo_recon'::regnamespace
      AND p.provolatile <> 'i'
      AND p.prokind IN ('f', 'p')
      AND has_function_privilege('public', p.oid, 'EXECUTE')
      AND p.prorettype NOT IN ('trigger'::regtype, 'internal'::regtype)
      AND NOT 'internal'::regtype = ANY (p.proargtypes::regtype[]) $$,
  'every non-immutable function is revoked from PUBLIC');

SELECT * FROM finish();
ROLLBACK;
