#!/usr/bin/env bash
# Reports benchmark on N synthetic transactions (bench/recon/generate.sql) in
# a throwaway cluster, each figure ours against its peer in one run:
#   user_summary, one user's row: the 1.2 view (filter pushed down to the
#     user's rows) against the 1.1 definition (bench/reports/user_summary_1_1.sql,
#     which aggregates every user first); best of REPEAT, milliseconds.
#   export_workbook at N rows (Summary with charts + every report) against
#     export_reports (the same reports as CSV), and export_dashboard: seconds,
#     and the backend's peak private memory (RssAnon), each in a fresh session.
#   Every reporting view: LIMIT 100 and count(*), best of REPEAT, ms, after
#     refresh(); and daily_summary's LIMIT 100 while a change is noted.
#   N=1000000 bash bench/reports/run.sh      (the default)
#   EXPORTS=no ...                           the views only (no exports)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000000}
REPEAT=${REPEAT:-3}
PER_USER=50
USERS=$(( (N + PER_USER - 1) / PER_USER ))
N=$(( USERS * PER_USER ))

make -s >/dev/null
source scripts/cluster.sh
trap cluster_destroy EXIT
cluster_start "shared_buffers = 1GB" "work_mem = 64MB" "maintenance_work_mem = 512MB" \
  "max_wal_size = 8GB" "synchronous_commit = off" "jit = off" "autovacuum = off"
q() { psql -qAtX -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }

q -c "CREATE EXTENSION calo_recon" -c "SET calo_recon.alerts = off"
echo "generating $N transactions ($USERS users x $PER_USER) ..."
q -c "SET calo_recon.alerts = off" -v users="$USERS" -v per_user="$PER_USER" -f bench/recon/generate.sql >/dev/null
# refresh(), as the scheduled job would: it reconciles the queued users and
# stores daily_summary's anomaly counts
q -c "VACUUM ANALYZE calo_recon.transactions" -c "SELECT status FROM calo_recon.refresh()" >/dev/null
q -c "ANALYZE" -f bench/reports/user_summary_1_1.sql >/dev/null
# a user of the generated rows at every N (users are 1 .. USERS)
user=$(q -c "SELECT md5('$(( USERS * 4242 / 20000 ))')::uuid::text")

# best of REPEAT in ms, each query in its own psql so no cache of plans helps
best_ms() {
  local sql=$1 best="" t i
  for ((i = 0; i < REPEAT; i++)); do
    t=$(q -c '\timing on' -c "$sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
    if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
  done
  echo "$best"
}
ours=$(best_ms "SELECT * FROM calo_recon.user_summary WHERE user_id = '$user'")
peer=$(best_ms "SELECT * FROM bench_user_summary_1_1 WHERE user_id = '$user'")
# the same row, but for the new columns
same=$(q -c "SELECT (SELECT (transactions, arithmetic_breaks, chain_breaks, drift, overdrafts, discrepancies, rejections)::text
                     FROM calo_recon.user_summary WHERE user_id = '$user') =
                    (SELECT (transactions, arithmetic_breaks, chain_breaks, drift, overdrafts, discrepancies, rejections)::text
                     FROM bench_user_summary_1_1 WHERE user_id = '$user')")
[ "$same" = t ] || { echo "user_summary: ours and the peer disagree" >&2; exit 1; }
printf 'user_summary one user (%s rows): ours %.1f ms, 1.1 view %.1f ms, ratio %.0fx\n' \
  "$N" "$ours" "$peer" "$(echo "$peer / $ours" | bc -l)"

# export_stats QUERY: runs QUERY in its own session; seconds, and the peak of
# the backend's private memory (RssAnon, sampled every 20 ms: shared buffers
# are not the export's)
export_stats() {
  local app="reportsbench$$_$RANDOM" peak=0 pid="" kb s e
  s=$(now)
  PGAPPNAME=$app psql -qX -v ON_ERROR_STOP=1 -c "SELECT pg_sleep(0.3)" -c "$1" >/dev/null &
  local job=$!
  while [ -z "$pid" ]; do
    pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$app'")
  done
  while kill -0 "$job" 2>/dev/null; do
    kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
    sleep 0.02
  done
  wait "$job"
  e=$(now)
  printf '%.1f s, peak private memory %.0f MB' "$(echo "$e - $s - 0.3" | bc -l)" "$(echo "$peak / 1024" | bc -l)"
}
if [ "${EXPORTS:-yes}" != no ]; then
  wb=$(export_stats "SELECT calo_recon.export_workbook('bench/book.xlsx')")
  csv=$(export_stats "SELECT count(*) FROM calo_recon.export_reports('bench/csv')")
  page=$(export_stats "SELECT calo_recon.export_dashboard('bench/dashboard.html')")
  size=$(du -m "$CR_ROOT/export/bench/book.xlsx" | cut -f1)
  echo "export_workbook ($N rows): $wb, ${size} MB file; export_reports (CSV, the same reports): $csv"
  echo "export_dashboard ($N rows): $page"
fi
# daily_summary between a change of the anomalies' inputs and the next
# refresh(): it counts the anomalies live
q -c "INSERT INTO calo_recon.anomaly_input_changes (changed_table) VALUES ('bench')"
printf '%-20s LIMIT 100 %8.1f ms   (counted live: a change since the refresh)\n' daily_summary \
  "$(best_ms "SELECT * FROM calo_recon.daily_summary LIMIT 100")"
q -c "DELETE FROM calo_recon.anomaly_input_changes WHERE changed_table = 'bench'"
for v in daily_summary overdrafts overdraft_episodes anomalies discrepancies balance_breaks \
         precision_drift user_summary; do
  printf '%-20s LIMIT 100 %8.1f ms   count(*) %8.1f ms\n' "$v" \
    "$(best_ms "SELECT * FROM calo_recon.$v LIMIT 100")" "$(best_ms "SELECT count(*) FROM calo_recon.$v")"
done
