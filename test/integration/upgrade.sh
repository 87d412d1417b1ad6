#!/usr/bin/env bash
# Upgrade from the oldest released version through the committed chain of
# update scripts: a database created at 1.0 (with the samples ingested) and
# updated with ALTER EXTENSION has exactly the catalog of a fresh install of
# the newest version (every member object with its definition, comments and
# grants), and gives the same results on the samples. The newest version's
# install script is assembled from sql/install/*.sql, its update script is
# written by hand, so a migration that is missing or differs fails here.
set -euo pipefail
OLD=calo_upgrade_old
NEW=calo_upgrade_new
fail() { echo "upgrade: $*" >&2; exit 1; }
q() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
ROLES_OLD=calo_upgrade_roles_old
ROLES_NEW=calo_upgrade_roles_new
DUPS=calo_upgrade_dups
MODELS=calo_upgrade_models
KINDS="reader analyst operator"
cleanup() {
  for db in "$OLD" "$NEW" "$ROLES_OLD" "$ROLES_NEW" "$DUPS" "$MODELS"; do dropdb --if-exists "$db" >/dev/null 2>&1 || true; done
  for kind in $KINDS; do psql -X -q -c "DROP ROLE IF EXISTS calo_upgrade_$kind" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
cleanup
createdb "$OLD"; createdb "$NEW"

q "$OLD" -c "CREATE EXTENSION calo_recon VERSION '1.0'"
[ "$(q "$OLD" -c "SELECT extversion FROM pg_extension WHERE extname = 'calo_recon'")" = 1.0 ] || fail "no 1.0"
q "$OLD" -c "SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs')" >/dev/null
NEWEST=$(q "$OLD" -c "SELECT default_version FROM pg_available_extensions WHERE name = 'calo_recon'")
# every step of the chain exists as a committed script and is taken in turn
chain=$(q "$OLD" -c "SELECT path FROM pg_extension_update_paths('calo_recon') WHERE source = '1.0' AND target = '$NEWEST'")
[ -n "$chain" ] || fail "no update path from 1.0 to $NEWEST"
echo "upgrade: chain $chain"
q "$OLD" -c "ALTER EXTENSION calo_recon UPDATE"
[ "$(q "$OLD" -c "SELECT extversion FROM pg_extension WHERE extname = 'calo_recon'")" = "$NEWEST" ] || fail "not updated to $NEWEST"
q "$NEW" -c "CREATE EXTENSION calo_recon"
q "$NEW" -c "SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs')" >/dev/null

# every member object of the extension with its definition
catalog_sql=$(cat <<'SQL'
WITH members AS (
    SELECT d.classid, d.objid, d.objsubid
    FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid AND d.refclassid = 'pg_extension'::regclass
    WHERE e.extname = 'calo_recon' AND d.deptype = 'e'
)
SELECT line FROM (
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, m.objsubid) ||
           ' comment=' || coalesce(obj_description(m.objid, (SELECT relname FROM pg_class WHERE oid = m.classid)), '-') AS line
    FROM members m
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' acl=' || coalesce(p.proacl::text, '-') || E'\n' ||
           CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) ELSE 'aggregate' END
    FROM members m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text || ' acl=' || coalesce(c.relacl::text, '-') ||
           coalesce(E'\n' || pg_get_viewdef(c.oid), '')
    FROM members m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION ALL
    SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
           ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-') ||
           ' identity=' || a.attidentity::text || ' comment=' || coalesce(col_description(a.attrelid, a.attnum), '-')
    FROM members m JOIN pg_attribute a ON m.classid = 'pg_class'::regclass AND a.attrelid = m.objid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    SELECT 'constraint ' || con.conrelid::regclass || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid)
    FROM members m JOIN pg_constraint con ON m.classid = 'pg_class'::regclass AND con.conrelid = m.objid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM members m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
    FROM members m JOIN pg_trigger t ON m.classid = 'pg_class'::regclass AND t.tgrelid = m.objid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'dumped ' || x.oid::regclass || ' ' || coalesce(x.cond, '')
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(oid, cond)
    WHERE e.extname = 'calo_recon'
    UNION ALL
    SELECT 'schema acl=' || coalesce(nspacl::text, '-') || ' comment=' || coalesce(obj_description(oid, 'pg_namespace'), '-')
    FROM pg_namespace WHERE nspname = 'calo_recon'
) l ORDER BY line
SQL
)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; cleanup' EXIT
q "$OLD" -c "$catalog_sql" > "$WORK/old.txt"
q "$NEW" -c "$catalog_sql" > "$WORK/new.txt"
if ! diff -u "$WORK/new.txt" "$WORK/old.txt" > "$WORK/diff.txt"; then
  head -n 60 "$WORK/diff.txt"
  fail "catalog after ALTER EXTENSION UPDATE differs from a fresh $NEWEST install"
fi
echo "upgrade: catalog identical ($(grep -c '^member ' "$WORK/new.txt") member objects)"

# same results on the samples: views and a refresh
for view in transactions balance_breaks precision_drift overdrafts overdraft_episodes discrepancies user_summary anomalies; do
  sql="SELECT count(*) || ' ' || coalesce(md5(string_agg(v::text, E'\n' ORDER BY v::text)), '-') FROM calo_recon.$view v"
  a=$(q "$OLD" -c "$sql"); b=$(q "$NEW" -c "$sql")
  [ "$a" = "$b" ] || fail "$view differs: $a vs $b"
done
echo "upgrade: views identical on the samples"
for db in "$OLD" "$NEW"; do
  q "$db" -c "SELECT status || ' ' || files || ' ' || transactions FROM calo_recon.refresh('samples')" | grep -qx "succeeded 0 0" \
    || fail "refresh after upgrade in $db"
done

# grants follow an update: roles granted with grant_role() at 1.1 hold,
# after ALTER EXTENSION UPDATE, exactly what the same kinds hold on a fresh
# install (the update script re-creates functions and adds objects, then
# re-applies the recorded grants last)
createdb "$ROLES_OLD"; createdb "$ROLES_NEW"
q "$ROLES_OLD" -c "CREATE EXTENSION calo_recon VERSION '1.1'"
q "$ROLES_NEW" -c "CREATE EXTENSION calo_recon"
for kind in $KINDS; do
  psql -X -q -v ON_ERROR_STOP=1 -c "CREATE ROLE calo_upgrade_$kind"
  for db in "$ROLES_OLD" "$ROLES_NEW"; do
    q "$db" -c "SELECT count(*) FROM calo_recon.grant_role('calo_upgrade_$kind', '$kind')" >/dev/null
  done
done
# a database still at 1.1 with this library: an ingest and a refresh say
# that 1.1 is not supported and to update (0A000, one message for every such
# path), not that a 1.2 function is missing (42883)
v11_ingest=$(psql -X -q -At -d "$ROLES_OLD" -c '\set VERBOSITY verbose' \
               -c "SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs')" 2>&1) \
  && fail "ingest_file at 1.1 did not fail"
echo "upgrade: ingest at 1.1: $(grep -m1 ERROR <<<"$v11_ingest")"
grep -q '^ERROR:  0A000: calo_recon.reconcile of calo_recon 1.1 is not supported by this library' <<<"$v11_ingest" \
  && grep -q '^HINT:  Run ALTER EXTENSION calo_recon UPDATE.' <<<"$v11_ingest" || fail "ingest_file at 1.1: $v11_ingest"
v11_refresh=$(q "$ROLES_OLD" -c "SELECT status || ' ' || error FROM calo_recon.refresh('samples')" 2>/dev/null)
[ "$v11_refresh" = "failed 0A000: calo_recon.reconcile of calo_recon 1.1 is not supported by this library" ] \
  || fail "refresh() at 1.1: $v11_refresh"
q "$ROLES_OLD" -c "ALTER EXTENSION calo_recon UPDATE"
held_sql=$(cat <<'SQL'
SELECT r.rolname || ' ' || x FROM pg_roles r CROSS JOIN LATERAL (
    SELECT c.relname || ':' || p AS x
    FROM pg_class c CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) p
    WHERE c.relnamespace = 'calo_recon'::regnamespace AND c.relkind IN ('r', 'v', 'm', 'p', 'S')
      AND has_table_privilege(r.oid, c.oid, p)
    UNION ALL
    SELECT c.relname || '.' || a.attname || ':' || p
    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) p
    WHERE c.relnamespace = 'calo_recon'::regnamespace AND c.relkind = 'r'
      AND has_column_privilege(r.oid, c.oid, a.attnum, p) AND NOT has_table_privilege(r.oid, c.oid, p)
    UNION ALL
    SELECT f.oid::regprocedure::text || ':EXECUTE' FROM pg_proc f
    WHERE f.pronamespace = 'calo_recon'::regnamespace AND has_function_privilege(r.oid, f.oid, 'EXECUTE')
    UNION ALL
    SELECT 'schema:USAGE' WHERE has_schema_privilege(r.oid, 'calo_recon', 'USAGE')) h
WHERE r.rolname LIKE 'calo\_upgrade\_%' ORDER BY 1
SQL
)
q "$ROLES_OLD" -c "$held_sql" > "$WORK/roles_old.txt"
q "$ROLES_NEW" -c "$held_sql" > "$WORK/roles_new.txt"
if ! diff -u "$WORK/roles_new.txt" "$WORK/roles_old.txt" > "$WORK/roles_diff.txt"; then
  head -n 40 "$WORK/roles_diff.txt"
  fail "roles granted at 1.1 hold other rights after the update than on a fresh install"
fi
[ "$(q "$ROLES_OLD" -c "SELECT string_agg(role_name || ':' || kind, ',' ORDER BY role_name) FROM calo_recon.role_grants")" \
  = "calo_upgrade_analyst:analyst,calo_upgrade_operator:operator,calo_upgrade_reader:reader" ] \
  || fail "the update did not record the grants made at 1.1"
echo "upgrade: roles granted at 1.1 hold what a fresh install grants ($(wc -l < "$WORK/roles_new.txt") rights)"
# balance_errors_event_key lost message_id in 1.2 (which the parser fills in
# from the export's other lines): a database from before may hold the same
# error twice, from two overlapping exports.  The update keeps the earliest
# row and moves the later one's count to repeated, instead of failing to
# build the key.  (Ingested without the reconcile, which at 1.1 calls C
# functions of this build that 1.1 does not declare.)
createdb "$DUPS"
q "$DUPS" -c "CREATE EXTENSION calo_recon VERSION '1.1'"
dups_sql=$(cat <<'SQL'
CREATE TEMP TABLE overlap AS SELECT
    E'2024-04-01T10:00:00.000Z 2024-04-01T10:00:00.000Z\treq-ov-1\tINFO\tProcessing message msg-ov-1\n' AS processing,
    E'2024-04-01T10:00:00.100Z 2024-04-01T10:00:00.100Z\treq-ov-1\tINFO\tStart syncing the balance { transaction: { '
    'id: ''01HVOVERLAP000000000000001'', userId: ''u-ov-1'', currency: ''SAR'', amount: 5, vat: 0, '
    'oldBalance: 100, newBalance: 95 } }\n' AS txn,
    E'2024-04-01T10:00:00.200Z 2024-04-01T10:00:00.200Z\treq-ov-1\tERROR\tSubscription balance and payment '
    'balance are not in sync { userId: ''u-ov-1'', subscriptionBalance: 95, paymentBalance: 90 }\n' AS error;
SELECT count(*) FROM calo_recon.ingest_log_unreconciled((SELECT processing || E'\n' || txn || E'\n' || error FROM overlap), 'ovA');
SELECT count(*) FROM calo_recon.ingest_log_unreconciled((SELECT txn || E'\n' || error FROM overlap), 'ovB');
SQL
)
q "$DUPS" -c "$dups_sql" >/dev/null
[ "$(q "$DUPS" -c "SELECT count(*) FROM calo_recon.balance_errors")" = 2 ] || fail "1.1 did not store the repeated error twice"
q "$DUPS" -c "ALTER EXTENSION calo_recon UPDATE" || fail "update with a repeated balance error"
got=$(q "$DUPS" -c "SELECT string_agg(source_file || ' ' || coalesce(message_id, '-'), ',') FROM calo_recon.balance_errors")
[ "$got" = "ovA msg-ov-1" ] || fail "balance errors after the update: $got"
got=$(q "$DUPS" -c "SELECT string_agg(file_name || ' ' || balance_errors || ' ' || repeated, ',' ORDER BY file_name) FROM calo_recon.ingested_files")
[ "$got" = "ovA 1 0,ovB 0 1" ] || fail "ingested_files after the update: $got"
echo "upgrade: a balance error stored twice before 1.2 is kept once"
# A model whose feature names, scaler and forest disagree could be stored
# before 1.2 and failed each time it scored.  The update deactivates it (an
# operator, who may only update active, could not switch it off once the
# check exists) and adds models_shape_check NOT VALID; activating it again
# is refused.  The forest's text is made by this build's 1.2 (the 1.1
# fitting aggregates need an update first).
forest=$(q "$NEW" -c "SELECT calo_recon.iforest_fit(ARRAY[g::float8, (g % 7)::float8, (g % 3)::float8], 10, 16, 7)::text
                      FROM generate_series(1, 40) g")
createdb "$MODELS"
q "$MODELS" -c "CREATE EXTENSION calo_recon VERSION '1.1'"
q "$MODELS" -v forest="$forest" <<'SQL' || fail "a 1.1 model with two names for three features"
INSERT INTO calo_recon.models (model_name, features, scaler, forest, contamination, threshold, training_rows, active)
VALUES ('short-names', ARRAY['a', 'b'], '{"n_features": 3, "n_samples": 40, "mean": [0, 0, 0], "var": [1, 1, 1]}',
        :'forest', 0.1, 0.6, 40, true);
SQL
q "$MODELS" -c "ALTER EXTENSION calo_recon UPDATE" 2>"$WORK/models.err" || { cat "$WORK/models.err"; fail "update with a malformed model"; }
grep -q 'active models 1 could not score' "$WORK/models.err" || { cat "$WORK/models.err"; fail "no WARNING for the deactivated model"; }
got=$(q "$MODELS" -c "SELECT m.active || ' ' || c.convalidated FROM calo_recon.models m, pg_constraint c
                      WHERE c.conname = 'models_shape_check' AND c.conrelid = 'calo_recon.models'::regclass")
[ "$got" = "false false" ] || fail "malformed model after the update (active, check validated): $got"
state=$(psql -X -q -At -d "$MODELS" -c "\set VERBOSITY sqlstate" -c "UPDATE calo_recon.models SET active = true" 2>&1 || true)
[ "$state" = "ERROR:  23514" ] || fail "activating the malformed model again: $state"
echo "upgrade: a malformed model stored before 1.2 is deactivated and cannot be activated again"

echo "upgrade: ok"
