#!/usr/bin/env bash
# One node against a Citus cluster (a coordinator and CITUS_WORKERS workers,
# all on this machine: scripts/citus.sh) on the same generated exports:
# ingest (ingest_file of the whole export, with its reconcile), reconcile()
# of every user, fit (train_model with a fixed seed: the per-shard features,
# the fit on the coordinator), score (score_transactions(false): every row
# again), reports (export_reports: every report view into CSV files) and
# copy (a client's bare COPY of the export's transactions again, under new
# ids and users, with its insert-time alert check: one node's trigger, the
# coordinator's statement hook on the cluster), at several sizes.  Before the figures, the cluster's findings, model, alerts
# and scores are checked equal to the one node's.
#   bash bench/citus/run.sh                      # SIZES="5000 20000 80000"
#   SIZES="2000 10000" SHARDS=16 bash bench/citus/run.sh
# Prints one line per size and step: seconds on one node, on the cluster,
# and cluster / one node.  Needs what scripts/citus.sh needs (root to build
# Citus once).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES=${SIZES:-"5000 20000 80000"}
SHARDS=${SHARDS:-8}

make -s >/dev/null
make -s -C tools calo_recon_gen >/dev/null
source scripts/citus.sh
WORK=$(mktemp -d)
cleanup() { citus_destroy; cluster_destroy; rm -rf "$WORK"; }
trap cleanup EXIT
cluster_start "jit = off" >/dev/null
ONE_HOST=$PGHOST ONE_PORT=$PGPORT
citus_start bench || { echo "skipped: $CITUS_SKIP"; exit 0; }
CL_PORT=$PGPORT

now() { date +%s.%N; }
q() {  # q one|cluster DB SQL
  if [ "$1" = one ]; then psql -qAtX -v ON_ERROR_STOP=1 -h "$ONE_HOST" -p "$ONE_PORT" -d "$2" -c "$3"
  else psql -qAtX -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$CL_PORT" -d "$2" -c "$3"; fi
}
timed() {  # timed one|cluster DB SQL: seconds
  local s e
  s=$(now); q "$@" >/dev/null; e=$(now)
  printf '%.3f' "$(echo "$e - $s" | bc -l)"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%F)"
echo "cluster: coordinator + $CITUS_WORKERS workers on this machine, $SHARDS shards"
printf '%-9s %-10s %10s %10s %8s\n' transactions step "one node" cluster ratio
for n in $SIZES; do
  tools/calo_recon_gen --seed 11 --transactions "$n" --out "$WORK/gen-$n" >/dev/null 2>&1
  cp -r "$WORK/gen-$n" "$CR_ROOT/import/"
  citus_import "$WORK/gen-$n"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$CR_ROOT/import"
  db=bench_$n
  psql -qAtX -h "$ONE_HOST" -p "$ONE_PORT" -d postgres -c "CREATE DATABASE $db" >/dev/null
  q one "$db" "CREATE EXTENSION calo_recon"
  # on the cluster: a database with Citus on every node, distributed while empty
  for port in "${CITUS_PORTS[@]}"; do
    psql -qAtX -h 127.0.0.1 -p "$port" -d postgres -c "CREATE DATABASE $db" >/dev/null
    psql -qAtX -h 127.0.0.1 -p "$port" -d "$db" -c "CREATE EXTENSION citus" >/dev/null
  done
  q cluster "$db" "SELECT citus_set_coordinator_host('127.0.0.1', ${CITUS_PORTS[0]})" >/dev/null
  for port in "${CITUS_PORTS[@]:1}"; do q cluster "$db" "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null; done
  q cluster "$db" "CREATE EXTENSION calo_recon"
  q cluster "$db" "SELECT pg_catalog.count(*) FROM calo_recon.distribute($SHARDS)" >/dev/null 2>&1

  # the rows of the bare COPY: the export's transactions under new ids and users
  q one "$db" "SELECT * FROM calo_recon.ingest_file('gen-$n')" >/dev/null
  q one "$db" "\\copy (SELECT 'copy-' || t.txn_id, 'copy-' || t.user_id, t.txn_type, t.source, t.action, t.currency, t.amount, t.vat, t.old_balance, t.new_balance, t.payment_balance, t.update_payment_balance, t.metadata, t.logged_at, t.request_id, t.message_id, t.source_file FROM calo_recon.transactions t) TO '$WORK/copy-$n.csv' WITH (FORMAT csv)"
  q one "$db" "DROP EXTENSION calo_recon CASCADE" && q one "$db" "CREATE EXTENSION calo_recon"

  declare -A t=()
  for where in one cluster; do
    t[$where,ingest]=$(timed "$where" "$db" "SELECT * FROM calo_recon.ingest_file('gen-$n')")
    t[$where,reconcile]=$(timed "$where" "$db" "SELECT * FROM calo_recon.reconcile()")
    t[$where,fit]=$(timed "$where" "$db" "SELECT m.model_id FROM calo_recon.train_model('bench', 0.01, 100, 256, 42) m")
    t[$where,score]=$(timed "$where" "$db" "SELECT calo_recon.score_transactions(false)")
    t[$where,reports]=$(timed "$where" "$db" "SELECT pg_catalog.count(*) FROM calo_recon.export_reports('$db-$where')")
    t[$where,copy]=$(timed "$where" "$db" "\\copy calo_recon.transactions (txn_id, user_id, txn_type, source, action, currency, amount, vat, old_balance, new_balance, payment_balance, update_payment_balance, metadata, logged_at, request_id, message_id, source_file) FROM '$WORK/copy-$n.csv' WITH (FORMAT csv)")
  done
  SAME="SELECT (SELECT pg_catalog.md5(pg_catalog.string_agg(pg_catalog.concat_ws('|', f.txn_id, f.finding, f.difference),
                                                           ',' ORDER BY f.txn_id, f.finding))
                FROM calo_recon.reconciliation_findings f)
               || (SELECT pg_catalog.md5(m.forest::text) FROM calo_recon.models m WHERE m.active)
               || (SELECT pg_catalog.md5(pg_catalog.string_agg(a.txn_id || a.alert_kind, ',' ORDER BY a.txn_id, a.alert_kind))
                   FROM calo_recon.alerts a)
               || (SELECT pg_catalog.md5(pg_catalog.string_agg(pg_catalog.concat_ws('|', s.txn_id, s.model_id, s.score, s.flagged),
                                                               ',' ORDER BY s.txn_id, s.model_id))
                   FROM calo_recon.transaction_scores s)"
  if [ "$(q one "$db" "$SAME")" != "$(q cluster "$db" "$SAME")" ]; then
    echo "FAIL $n: the cluster's findings, model, alerts or scores differ from the one node's"; exit 1
  fi
  for step in ingest reconcile fit score reports copy; do
    printf '%-9s %-10s %10s %10s %7.2fx\n' "$n" "$step" "${t[one,$step]}" "${t[cluster,$step]}" \
      "$(echo "${t[cluster,$step]} / ${t[one,$step]}" | bc -l)"
  done
done
