#!/usr/bin/env bash
# ingest_file of a generated export against COPY of the same rows into the
# same tables, in one run on one throwaway cluster (issue 8: within 2x).
#
#   bash bench/ingest/ingest_file.sh [--transactions N] [--seed N] [--repeat N]
#
# The export is tools/calo_recon_gen's (default 13,600 transactions, about
# 17 MB of log text in 215 gzip files: the size of the real export, as
# bench/parse).  Ours: SELECT * FROM calo_recon.ingest_file('bench') into a
# fresh database, default settings (alerts on): gunzip, parse, store every
# event with its raw text, the transactions, balance errors, rejections and
# quarantine rows, reconcile.  Peer: the rows ingest_file stored (log_events,
# transactions, balance_errors, negative_balance_rejections, quarantine),
# written out as COPY files and loaded with COPY FROM into the same tables,
# with the same indexes and triggers, of a second fresh database: no parsing,
# no reconciliation.  Prints both wall times, the CPU time of each one's
# backend (less disturbed by other work on the machine) and the ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
TXNS=13600
SEED=42
REPEAT=3
while [ $# -gt 0 ]; do
  case "$1" in
    --transactions) TXNS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    *) echo "usage: $0 [--transactions N] [--seed N] [--repeat N]" >&2; exit 2 ;;
  esac
done

make -s >/dev/null
make -s -C tools calo_recon_gen >/dev/null
source scripts/cluster.sh
source bench/ingest/timing.sh
trap cluster_destroy EXIT
cluster_start "shared_buffers = '512MB'" "max_wal_size = '4GB'" >/dev/null
export_dir=$CR_ROOT/import/bench
tools/calo_recon_gen --seed "$SEED" --transactions "$TXNS" --out "$export_dir" >/dev/null
[ "$(id -u)" -eq 0 ] && chown -R postgres "$CR_ROOT/import"
mb=$(find "$export_dir" -name '*.gz' -exec zcat {} + | wc -c | awk '{ printf "%.1f", $1 / 1e6 }')
files=$(find "$export_dir" -name '*.gz' | wc -l)

q() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
tables="log_events transactions balance_errors negative_balance_rejections quarantine"

fresh_db() {
  dropdb --if-exists "$1" >/dev/null 2>&1
  createdb "$1"
  q -d "$1" -c "CREATE EXTENSION calo_recon"
  q -d "$1" -c "CHECKPOINT"
}

# --- ours --------------------------------------------------------------------
read -r ingest_s ingest_cpu < <(for _ in $(seq 1 "$REPEAT"); do
  fresh_db bench_ingest
  timed bench_ingest "SELECT * FROM calo_recon.ingest_file('bench')"
done | best)

# --- the peer: COPY of the same rows (those of the last ingest) ---------------
dump=$CR_ROOT/copy
mkdir -p "$dump"
[ "$(id -u)" -eq 0 ] && chown postgres "$dump"
for t in $tables; do
  q -d bench_ingest -c "COPY calo_recon.$t TO '$dump/$t.copy'"
done
rows=$(for t in $tables; do printf '%s %s, ' "$(q -d bench_ingest -c "SELECT count(*) FROM calo_recon.$t")" "$t"; done)
# one transaction, as ingest_file
copy_sql=("BEGIN")
for t in $tables; do copy_sql+=("COPY calo_recon.$t FROM '$dump/$t.copy'"); done
copy_sql+=("COMMIT")
read -r copy_s copy_cpu < <(for _ in $(seq 1 "$REPEAT"); do
  fresh_db bench_copy
  timed bench_copy "${copy_sql[@]}"
done | best)
same=$(for t in $tables; do
  a=$(q -d bench_ingest -c "SELECT count(*) FROM calo_recon.$t")
  b=$(q -d bench_copy -c "SELECT count(*) FROM calo_recon.$t")
  [ "$a" = "$b" ] || echo "differs: $t $a vs $b"
done)
[ -z "$same" ] || { echo "$same" >&2; exit 1; }

echo "bench/ingest/ingest_file: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), load $(cut -d' ' -f1 /proc/loadavg), seed $SEED, $TXNS transactions, $files files, $mb MB of log text, best of $REPEAT"
echo "  rows: ${rows%, }"
awk -v i="$ingest_s" -v c="$copy_s" -v ic="$ingest_cpu" -v cc="$copy_cpu" -v mb="$mb" 'BEGIN {
  printf "  ingest_file (gunzip, parse, store, reconcile): %8.3f s, backend CPU %6.2f s  (%.1f MB/s)\n", i, ic, mb / i
  printf "  COPY of the same rows into the same tables:     %8.3f s, backend CPU %6.2f s\n", c, cc
  printf "  ratio ingest_file / COPY: %.2f (wall), %.2f (backend CPU)\n", i / c, ic / cc
}'
