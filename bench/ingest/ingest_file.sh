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
# no reconciliation.  Prints both wall times and the ratio.
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
trap cluster_destroy EXIT
cluster_start "shared_buffers = '512MB'" "max_wal_size = '4GB'" >/dev/null
export_dir=$CR_ROOT/import/bench
tools/calo_recon_gen --seed "$SEED" --transactions "$TXNS" --out "$export_dir" >/dev/null
[ "$(id -u)" -eq 0 ] && chown -R postgres "$CR_ROOT/import"
mb=$(find "$export_dir" -name '*.gz' -exec zcat {} + | wc -c | awk '{ printf "%.1f", $1 / 1e6 }')
files=$(find "$export_dir" -name '*.gz' | wc -l)

q() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
# ms DB SQL: wall time of SQL in milliseconds (psql \timing)
ms() {
  psql -qX -d "$1" -v ON_ERROR_STOP=1 -c '\timing on' -c "$2" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1
}
tables="log_events transactions balance_errors negative_balance_rejections quarantine"

fresh_db() {
  dropdb --if-exists "$1" >/dev/null 2>&1
  createdb "$1"
  q -d "$1" -c "CREATE EXTENSION calo_recon"
  q -d "$1" -c "CHECKPOINT"
}
best() { awk 'NR == 1 || $1 + 0 < b + 0 { b = $1 } END { print b }'; }

# --- ours --------------------------------------------------------------------
ingest_ms=$(for _ in $(seq 1 "$REPEAT"); do
  fresh_db bench_ingest
  ms bench_ingest "SELECT * FROM calo_recon.ingest_file('bench')"
done | best)

# --- the peer: COPY of the same rows (those of the last ingest) ---------------
dump=$CR_ROOT/copy
mkdir -p "$dump"
[ "$(id -u)" -eq 0 ] && chown postgres "$dump"
for t in $tables; do
  q -d bench_ingest -c "COPY calo_recon.$t TO '$dump/$t.copy'"
done
rows=$(for t in $tables; do printf '%s %s, ' "$(q -d bench_ingest -c "SELECT count(*) FROM calo_recon.$t")" "$t"; done)
# one transaction, as ingest_file; each COPY timed
copy_args=(-c "BEGIN")
for t in $tables; do copy_args+=(-c "COPY calo_recon.$t FROM '$dump/$t.copy'"); done
copy_args+=(-c "COMMIT")
best_copy=""
for _ in $(seq 1 "$REPEAT"); do
  fresh_db bench_copy
  copy_times=$(psql -qX -d bench_copy -v ON_ERROR_STOP=1 -c '\timing on' "${copy_args[@]}" \
               | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
  total=$(echo "$copy_times" | awk '{ s += $1 } END { print s }')
  if [ -z "$best_copy" ] || awk -v a="$total" -v b="$best_copy" 'BEGIN { exit !(a < b) }'; then
    best_copy=$total
    per_table=$(echo "$copy_times" | sed -n '2,6p' | paste -d' ' - <(printf '%s\n' $tables) \
                | awk '{ printf "%s %.3f s, ", $2, $1 / 1000 }')
  fi
done
copy_ms=$best_copy
same=$(for t in $tables; do
  a=$(q -d bench_ingest -c "SELECT count(*) FROM calo_recon.$t")
  b=$(q -d bench_copy -c "SELECT count(*) FROM calo_recon.$t")
  [ "$a" = "$b" ] || echo "differs: $t $a vs $b"
done)
[ -z "$same" ] || { echo "$same" >&2; exit 1; }

echo "bench/ingest/ingest_file: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), load $(cut -d' ' -f1 /proc/loadavg), seed $SEED, $TXNS transactions, $files files, $mb MB of log text, best of $REPEAT"
echo "  rows: ${rows%, }"
awk -v i="$ingest_ms" -v c="$copy_ms" -v mb="$mb" -v per="${per_table%, }" 'BEGIN {
  printf "  ingest_file (gunzip, parse, store, reconcile): %8.3f s  (%.1f MB/s)\n", i / 1000, mb / (i / 1000)
  printf "  COPY of the same rows into the same tables:     %8.3f s  (%s)\n", c / 1000, per
  printf "  ratio ingest_file / COPY: %.2f\n", i / c
}'
