#!/usr/bin/env bash
# Reconciliation benchmark: calo_recon.reconcile() (ours) against the best
# plain-SQL window query (the peer) and a bare count(*) (the scan floor),
# on N synthetic transactions in a throwaway cluster.
#   bash bench/recon/run.sh            # N = 10,000,000
#   N=200000 REPEAT=3 bash bench/recon/run.sh
# Prints seconds for each (best of REPEAT), peer/ours and ours/count, and
# checks that ours and the peer found the same findings (counts + md5).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-10000000}
REPEAT=${REPEAT:-2}
PER_USER=50
USERS=$(( (N + PER_USER - 1) / PER_USER ))
N=$(( USERS * PER_USER ))
HERE=bench/recon

make -s >/dev/null
source scripts/cluster.sh
trap cluster_destroy EXIT
cluster_start "shared_buffers = 2GB" "work_mem = 256MB" "maintenance_work_mem = 1GB" \
  "max_parallel_workers_per_gather = 2" "max_wal_size = 8GB" "synchronous_commit = off" \
  "jit = off" "autovacuum = off"

q() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
# best wall time in seconds of REPEAT runs of a SQL command
best() {
  local sql=$1 best_t="" s e t i
  for ((i = 0; i < REPEAT; i++)); do
    s=$(now); q -c "$sql" >/dev/null; e=$(now)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$best_t" ] || [ "$(echo "$t < $best_t" | bc -l)" = 1 ]; then best_t=$t; fi
  done
  printf '%.3f' "$best_t"
}

q -c "CREATE EXTENSION calo_recon"
q -c "CREATE TABLE bench_peer_findings (LIKE calo_recon.reconciliation_findings INCLUDING ALL)"
echo "generating $N transactions ($USERS users x $PER_USER) ..."
s=$(now)
q -v users="$USERS" -v per_user="$PER_USER" -f $HERE/generate.sql
q -c "VACUUM (ANALYZE) calo_recon.transactions"
printf 'generated in %.1f s; table %s\n' "$(echo "$(now) - $s" | bc -l)" \
  "$(q -c "SELECT pg_size_pretty(pg_table_size('calo_recon.transactions'))")"
q -c "SELECT count(*) FROM calo_recon.transactions" >/dev/null   # warm the cache

t_count=$(best "SELECT count(*) FROM calo_recon.transactions")
# context: reconcile() runs in one process, count(*) above in three
t_count1=$(best "SET max_parallel_workers_per_gather = 0; SELECT count(*) FROM calo_recon.transactions")
t_ours=$(best "SELECT * FROM calo_recon.reconcile()")
t_peer=$(best "TRUNCATE bench_peer_findings; $(cat $HERE/window_peer.sql)")

summary() {
  q -c "SELECT count(*) FILTER (WHERE finding = 'arithmetic') || ' arithmetic, ' ||
               count(*) FILTER (WHERE finding = 'chain') || ' chain, ' ||
               count(*) FILTER (WHERE finding IN ('drift', 'chain_drift')) || ' drift, ' ||
               count(*) FILTER (WHERE first_break) || ' first breaks; md5 ' ||
               md5(string_agg(txn_id || ':' || finding || ':' || trim_scale(expected)::text || ':' ||
                   trim_scale(actual)::text || ':' || trim_scale(difference)::text || ':' ||
                   trim_scale(tolerance)::text || ':' || first_break, ',' ORDER BY txn_id, finding))
        FROM $1"
}
ours=$(summary calo_recon.reconciliation_findings)
peer=$(summary bench_peer_findings)

echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); nproc: $(nproc); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "transactions: $N  users: $USERS  best of $REPEAT"
printf 'count(*)         %8s s   (2 parallel workers)\n' "$t_count"
printf 'count(*) serial  %8s s   (no parallel workers)\n' "$t_count1"
printf 'reconcile() ours %8s s\n' "$t_ours"
printf 'window SQL peer  %8s s\n' "$t_peer"
printf 'peer/ours        %8.2f x   (target >= 2)\n' "$(echo "$t_peer / $t_ours" | bc -l)"
printf 'ours/count       %8.2f x   (target <= 3)\n' "$(echo "$t_ours / $t_count" | bc -l)"
printf 'ours/serial count %7.2f x\n' "$(echo "$t_ours / $t_count1" | bc -l)"
echo "ours: $ours"
echo "peer: $peer"
if [ "$ours" = "$peer" ]; then echo "same findings: yes"; else echo "same findings: NO"; exit 1; fi
