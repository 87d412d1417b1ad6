#!/usr/bin/env bash
# COPY into calo_recon.transactions, with everything its triggers do (default
# settings: alerts on, amount rule at its default, the reconcile queue),
# against COPY of the same CSV into a table of the same columns with no
# index, constraint or trigger, in one run on one throwaway cluster.
# Prints both wall times, the CPU time of each COPY's backend and the ratios
# (issue 8: within 1.5x).
#
#   bash bench/ingest/copy.sh [ROWS]     # default 100000; the issue's figure: 1000000
#
# Each figure is the best of REPEAT runs (default 2), each into a fresh
# database: the machine may be shared.
# The rows are the anomaly benchmark's (bench/anomaly/prototype_pipeline.py
# generate, seed 1: ROWS/50 users, chains in order, 0.2 % outliers).
# BREAKDOWN=1 also times the COPY with the triggers disabled, with one index
# or the other dropped, to show what costs.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-100000}
REPEAT=${REPEAT:-2}
PY=/usr/bin/python3
OUT=bench/out/anomaly
mkdir -p "$OUT"
CSV=$OUT/transactions-$ROWS.csv
[ -s "$CSV" ] || $PY bench/anomaly/prototype_pipeline.py generate --rows "$ROWS" --seed 1 --out "$CSV"
make -s >/dev/null

source scripts/cluster.sh
source bench/ingest/timing.sh
trap cluster_destroy EXIT
cluster_start "shared_buffers = '512MB'" "max_wal_size = '4GB'" >/dev/null
cluster_import "$CSV"
server_csv="$CR_ROOT/import/$(basename "$CSV")"

# copy_seconds DB TABLE: "wall cpu" of one COPY of the CSV into TABLE (fresh,
# empty), after a checkpoint
copy_seconds() {
  psql -qX -d "$1" -v ON_ERROR_STOP=1 -c "CHECKPOINT" >/dev/null
  timed "$1" "COPY $2 FROM '$server_csv' (FORMAT csv, HEADER true)"
}
fresh_db() {
  dropdb --if-exists "$1" >/dev/null 2>&1
  createdb "$1"
  psql -qX -d "$1" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION calo_recon" \
       -c "CREATE TABLE public.plain (LIKE calo_recon.transactions)" >/dev/null
}

read -r plain plain_cpu < <(for _ in $(seq 1 "$REPEAT"); do fresh_db bench_plain; copy_seconds bench_plain public.plain; done | best)
read -r ours ours_cpu < <(for _ in $(seq 1 "$REPEAT"); do fresh_db bench_ours; copy_seconds bench_ours calo_recon.transactions; done | best)
alerts=$(psql -qAtX -d bench_ours -c "SELECT count(*) FROM calo_recon.alerts")
queued=$(psql -qAtX -d bench_ours -c "SELECT count(*) FROM calo_recon.pending_reconcile")

echo "bench/ingest/copy: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), load $(cut -d' ' -f1 /proc/loadavg), $ROWS rows, best of $REPEAT"
printf '  COPY into a plain table (no index, no trigger): %8.3f s, backend CPU %6.2f s  (%.0f rows/s)\n' \
  "$plain" "$plain_cpu" "$(awk -v r="$ROWS" -v s="$plain" 'BEGIN { print r / s }')"
printf '  COPY into calo_recon.transactions:              %8.3f s, backend CPU %6.2f s  (%.0f rows/s; %s alerts raised, %s queue entries)\n' \
  "$ours" "$ours_cpu" "$(awk -v r="$ROWS" -v s="$ours" 'BEGIN { print r / s }')" "$alerts" "$queued"
awk -v p="$plain" -v o="$ours" -v pc="$plain_cpu" -v oc="$ours_cpu" \
  'BEGIN { printf "  ratio calo_recon / plain: %.2f (wall), %.2f (backend CPU)\n", o / p, oc / pc }'

# each line: wall seconds, backend CPU seconds
if [ -n "${BREAKDOWN:-}" ]; then
  fresh_db bench_notrig
  psql -qX -d bench_notrig -c "ALTER TABLE calo_recon.transactions DISABLE TRIGGER USER" >/dev/null
  printf '    triggers disabled:                   %s\n' "$(copy_seconds bench_notrig calo_recon.transactions)"
  fresh_db bench_noalerts
  psql -qX -d bench_noalerts -c "ALTER TABLE calo_recon.transactions DISABLE TRIGGER transactions_alert" >/dev/null
  printf '    alert trigger disabled:              %s\n' "$(copy_seconds bench_noalerts calo_recon.transactions)"
  fresh_db bench_pkonly
  psql -qX -d bench_pkonly -c "ALTER TABLE calo_recon.transactions DISABLE TRIGGER USER" \
       -c "DROP INDEX calo_recon.transactions_user_chain_idx" >/dev/null
  printf '    triggers disabled, primary key only: %s\n' "$(copy_seconds bench_pkonly calo_recon.transactions)"
  fresh_db bench_chainonly
  psql -qX -d bench_chainonly -c "ALTER TABLE calo_recon.transactions DISABLE TRIGGER USER" \
       -c "ALTER TABLE calo_recon.transactions DROP CONSTRAINT transactions_pkey" >/dev/null
  printf '    triggers disabled, chain index only: %s\n' "$(copy_seconds bench_chainonly calo_recon.transactions)"
fi
