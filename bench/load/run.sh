#!/usr/bin/env bash
# Load test: concurrent wallet inserts with alerts on, a refresh every few
# seconds and BI queries on the views, in a throwaway cluster, then checks:
# no client errors, no deadlocks or errors in the server log, every inserted
# row reconciled (queue empty, findings equal a full reconcile) and scored
# once by the active model, every alert notified exactly once (counted in
# its statement's one notification).
#   DURATION=60 INSERT_CLIENTS=4 BI_CLIENTS=2 REFRESH_PERIOD=5 bash bench/load/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-60}
INSERT_CLIENTS=${INSERT_CLIENTS:-4}
BI_CLIENTS=${BI_CLIENTS:-2}
REFRESH_PERIOD=${REFRESH_PERIOD:-5}
HERE=bench/load
DB=calo_load

make -s >/dev/null
source scripts/cluster.sh
trap cluster_destroy EXIT
cluster_start "log_lock_waits = on" "deadlock_timeout = 200ms"
cluster_import test/data/samples
WORK=$CR_ROOT/load
mkdir -p "$WORK"
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }
createdb "$DB"

# baseline: the samples, 5000 ordinary rows and a trained model, so that
# refresh has a model to score with and alerts check the model too
q <<'SQL' >/dev/null
CREATE EXTENSION calo_recon;
CREATE SEQUENCE public.load_txn_seq;
SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs');
SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT 'BASE-' || i, 'load-user-' || (1 + i % 500), 'DEBIT', 'LOAD', 'BENCH', 'SAR',
       1 + i % 400, 0, 2000, 2000 - (1 + i % 400), timestamptz '2024-01-01' + i * interval '1 minute'
FROM generate_series(1, 5000) i;
RESET calo_recon.alerts;
SELECT calo_recon.reconcile();
SELECT model_id FROM calo_recon.train_model('load', 0.01, 100, 256, 1);
SELECT status FROM calo_recon.refresh('samples');
SQL
q -c "SELECT pg_stat_reset()" >/dev/null
start_alert=$(q -c "SELECT coalesce(max(alert_id), 0) FROM calo_recon.alerts")
start_rows=$(q -c "SELECT count(*) FROM calo_recon.transactions")
log_start=$(stat -c %s "$CR_ROOT/server.log")

rm -f "$WORK/stop"
/usr/bin/python3 "$HERE/listen.py" "$DB" "$WORK/stop" "$WORK/notified" &
listener=$!
for _ in $(seq 1 50); do [ -f "$WORK/notified.ready" ] && break; sleep 0.1; done

PGBENCH="$CR_BIN/pgbench -n -d $DB -T $DURATION -P 10"
$PGBENCH -c "$INSERT_CLIENTS" -j 2 -f "$HERE/insert.sql" >"$WORK/insert.out" 2>&1 &
p1=$!
$PGBENCH -c 1 -D refresh_period="$REFRESH_PERIOD" -f "$HERE/refresh.sql" >"$WORK/refresh.out" 2>&1 &
p2=$!
$PGBENCH -c "$BI_CLIENTS" -f "$HERE/bi.sql" >"$WORK/bi.out" 2>&1 &
p3=$!
status=0
wait $p1 || status=1
wait $p2 || status=1
wait $p3 || status=1

# a last refresh picks up whatever committed after the previous one
final=$(q -c "SELECT status FROM calo_recon.refresh('samples')")
touch "$WORK/stop"
wait $listener || status=1

report() {  # report NAME FILE
  local tps lat fail
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$2" | tail -1)
  lat=$(sed -n 's/^latency average = \([0-9.]* ms\)/\1/p' "$2")
  fail=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$2")
  printf '%-8s tps %-10s latency avg %-12s transactions %-8s failed %s\n' "$1" "$tps" "$lat" \
    "$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$2")" "${fail:-0}"
}
echo "load: ${DURATION}s, $INSERT_CLIENTS insert clients, $BI_CLIENTS BI clients, refresh every ${REFRESH_PERIOD}s"
report insert "$WORK/insert.out"
report refresh "$WORK/refresh.out"
report bi "$WORK/bi.out"

problems=0
check() {  # check DESCRIPTION ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then echo "ok    $1: $2"; else echo "FAIL  $1: $2 (expected $3)"; problems=$((problems + 1)); fi
}
check "pgbench exit status" "$status" 0
check "aborted clients" "$(cat "$WORK"/*.out | grep -c 'aborted' || true)" 0
check "final refresh" "$final" succeeded
log_tail=$(tail -c +"$((log_start + 1))" "$CR_ROOT/server.log")
check "deadlocks in the server log" "$(echo "$log_tail" | grep -c 'deadlock detected' || true)" 0
check "errors in the server log" "$(echo "$log_tail" | grep -c 'ERROR:' || true)" 0
inserted=$(( $(q -c "SELECT count(*) FROM calo_recon.transactions") - start_rows ))
echo "      inserted rows: $inserted"
check "failed or skipped runs besides overlaps" "$(q -c "SELECT count(*) FROM calo_recon.runs WHERE status = 'failed'")" 0
check "rows still queued for reconciliation" "$(q -c "SELECT count(*) FROM calo_recon.pending_reconcile")" 0
before=$(q -c "SELECT md5(string_agg(f::text, '|' ORDER BY txn_id, finding)) FROM (SELECT txn_id, user_id, finding, expected, actual, difference, first_break FROM calo_recon.reconciliation_findings) f")
q -c "SELECT calo_recon.reconcile()" >/dev/null
after=$(q -c "SELECT md5(string_agg(f::text, '|' ORDER BY txn_id, finding)) FROM (SELECT txn_id, user_id, finding, expected, actual, difference, first_break FROM calo_recon.reconciliation_findings) f")
check "incremental findings equal a full reconcile" "$before" "$after"
check "rows not scored by the active model" "$(q -c "SELECT count(*) FROM calo_recon.transactions t, calo_recon.models m WHERE m.active AND NOT EXISTS (SELECT 1 FROM calo_recon.transaction_scores s WHERE s.txn_id = t.txn_id AND s.model_id = m.model_id)")" 0
check "rows scored more than once" "$(q -c "SELECT count(*) FROM (SELECT txn_id, model_id FROM calo_recon.transaction_scores GROUP BY 1, 2 HAVING count(*) > 1) d")" 0
alerts=$(q -c "SELECT count(*) FROM calo_recon.alerts WHERE alert_id > $start_alert")
# one notification per inserting statement: its count, first and last alert id
notified=$(awk '{ n += $3 } END { print n + 0 }' "$WORK/notified")
check "alerts notified (received / stored)" "$notified" "$alerts"
check "duplicate notifications" "$(cut -d' ' -f1 "$WORK/notified" | sort | uniq -d | wc -l)" 0
# the ids go through a table, not the command line: a long run notifies tens of thousands
q -c "CREATE TABLE load_notified (first_alert_id bigint, last_alert_id bigint, alerts bigint)"
q -c "\\copy load_notified FROM '$WORK/notified' (DELIMITER ' ')"
check "notifications without an alert row" "$(q -c "SELECT count(*) FROM load_notified n WHERE NOT EXISTS (SELECT 1 FROM calo_recon.alerts a WHERE a.alert_id = n.first_alert_id) OR NOT EXISTS (SELECT 1 FROM calo_recon.alerts a WHERE a.alert_id = n.last_alert_id)")" 0
q -c "SELECT 'runs: ' || string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM calo_recon.runs GROUP BY 1) r"
q -c "SELECT 'alerts by kind: ' || string_agg(alert_kind || ' ' || n, ', ' ORDER BY alert_kind) FROM (SELECT alert_kind, count(*) n FROM calo_recon.alerts WHERE alert_id > $start_alert GROUP BY 1) a"
q -c "SELECT 'refresh duration: avg ' || round(avg(extract(epoch FROM finished_at - started_at) * 1000)) || ' ms, max ' || round(max(extract(epoch FROM finished_at - started_at) * 1000)) || ' ms' FROM calo_recon.runs WHERE status = 'succeeded'"
echo "load: $problems problem(s)"
[ "$problems" -eq 0 ]
