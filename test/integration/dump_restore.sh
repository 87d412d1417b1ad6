#!/usr/bin/env bash
# pg_dump -Fc / pg_restore round trip of a database with ingested samples, a
# trained model, analyst feedback, alerts and a refresh run: every user table
# comes back identical, and the restored model scores the same rows with
# bit-identical floats.
set -euo pipefail
SRC=calo_dump_src
DST=calo_dump_dst
DUMP=$(mktemp /tmp/calo_dump.XXXXXX)
fail() { echo "dump_restore: $*" >&2; exit 1; }
q() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }
cleanup() {
  rm -f "$DUMP"
  dropdb --if-exists "$SRC" >/dev/null 2>&1 || true
  dropdb --if-exists "$DST" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
createdb "$SRC"
q "$SRC" <<'SQL' >/dev/null
CREATE EXTENSION calo_recon;
SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs');
-- enough ordinary rows for a forest, plus one alerting row
SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT 'DUMP' || lpad(i::text, 5, '0'), 'dump-user-' || (i % 17), 'DEBIT', 'SAR',
       10 + (i * 7) % 23, 0, 1000, 1000 - (10 + (i * 7) % 23),
       timestamptz '2024-05-01 08:00+00' + i * interval '7 minutes'
FROM generate_series(1, 300) i;
RESET calo_recon.alerts;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('DUMP-OVERDRAFT', 'dump-overdraft', 'DEBIT', 'BHD', 40, 0, 0, -40, '2024-05-02 08:00+00');
INSERT INTO calo_recon.currencies (code, minor_unit) VALUES ('XTS', 4);
-- thresholds set since install: one over a built-in row, one new
SELECT currency FROM calo_recon.set_amount_threshold('KWD', 60);
SELECT currency FROM calo_recon.set_amount_threshold('XTS', 5);
SELECT model_id FROM calo_recon.train_model('dump-test', 0.01, 100, 256, 11);
SELECT feedback_id FROM calo_recon.record_feedback('DUMP00001', 'confirmed', 'test');
SELECT feedback_id FROM calo_recon.record_feedback('DUMP00002', 'dismissed');
SELECT run_id FROM calo_recon.refresh('samples');
SQL

pg_dump -Fc -f "$DUMP" "$SRC"
createdb "$DST"
# reloaded rows are not new: restore with alerts off
PGOPTIONS='-c calo_recon.alerts=off' pg_restore --exit-on-error -d "$DST" "$DUMP"

# one fingerprint per table: every column, in key order
tables="transactions:txn_id balance_errors:error_id negative_balance_rejections:rejection_id
log_events:event_id quarantine:quarantine_id ingested_files:digest currencies:code
reconciliation_findings:txn_id,finding models:model_id transaction_scores:txn_id,model_id
anomaly_feedback:feedback_id runs:run_id alerts:alert_id"
for spec in $tables; do
  table=${spec%%:*}; key=${spec#*:}
  sql="SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, E'\n' ORDER BY $key)), '-') FROM calo_recon.$table t"
  a=$(q "$SRC" -c "$sql"); b=$(q "$DST" -c "$sql")
  [ "$a" = "$b" ] || fail "$table differs after restore: $a vs $b"
  echo "dump_restore: $table ${a%% *} rows identical"
  [ "$table" = transactions ] && [ "${a%% *}" -lt 300 ] && fail "too few transactions"
done
# the amount thresholds set since install come back as they were (who, when);
# the built-in rows are the restoring install's own
sql="SELECT count(*) || ' ' || md5(string_agg(row(a.currency, a.threshold, a.builtin, a.set_by,
                                                CASE WHEN NOT a.builtin THEN a.set_at END)::text, E'\\n' ORDER BY a.currency))
     FROM calo_recon.amount_thresholds a"
a=$(q "$SRC" -c "$sql"); b=$(q "$DST" -c "$sql")
[ "$a" = "$b" ] || fail "amount_thresholds differs after restore: $a vs $b"
[ "$(q "$DST" -c "SELECT string_agg(currency || '=' || threshold, ',' ORDER BY currency) FROM calo_recon.amount_thresholds WHERE NOT builtin")" = "KWD=60,XTS=5" ] \
  || fail "the thresholds set since install are not the restored ones"
echo "dump_restore: amount_thresholds ${a%% *} rows identical (set since install: KWD, XTS)"
[ "$(q "$DST" -c "SELECT count(*) FROM calo_recon.runs WHERE status = 'succeeded'")" -ge 1 ] || fail "no run restored"
[ "$(q "$DST" -c "SELECT count(*) FROM calo_recon.models WHERE active")" = 1 ] || fail "no active model restored"

# the restored model scores every row exactly as the original
score_sql="SELECT md5(string_agg(f.txn_id || ' ' || calo_recon.iforest_score(m.forest, calo_recon.scaler_transform(m.scaler, f.features))::text, E'\n' ORDER BY f.txn_id))
           FROM calo_recon.transaction_features f, calo_recon.models m WHERE m.active"
a=$(q "$SRC" -c "SET extra_float_digits = 3; $score_sql"); b=$(q "$DST" -c "SET extra_float_digits = 3; $score_sql")
[ "$a" = "$b" ] || fail "restored model scores differ"
a=$(q "$SRC" -c "SELECT calo_recon.iforest_to_json(forest)::text FROM calo_recon.models WHERE active" | md5sum)
b=$(q "$DST" -c "SELECT calo_recon.iforest_to_json(forest)::text FROM calo_recon.models WHERE active" | md5sum)
[ "$a" = "$b" ] || fail "restored forest differs"
# the restored database keeps working: a new refresh, new ids after the restored ones
q "$DST" -c "SELECT status FROM calo_recon.refresh('samples')" | grep -qx succeeded || fail "refresh after restore"
echo "dump_restore: ok"
