#!/usr/bin/env bash
# Training cost: iforest_fit(f) (100 trees x 256, reservoir of 25,600 rows)
# over 1M and 10M rows of 6 features, against SELECT count(*) of the same
# rows, serial and with 2 parallel workers; and the backend's peak private
# memory (RssAnon sampled every 20 ms) during each fit, which stays flat
# from 1M to 10M rows.  Also scikit-learn's fit on the 1M rows (peer).
#   N1=100000 N2=1000000 bash bench/anomaly/fit.sh     (a quick run)
source "$(dirname "$0")/common.sh"
N1=${N1:-1000000}
N2=${N2:-10000000}
bench_cluster
bench_rows bench_fit_small "$N1"
factor=$((N2 / N1))
psql -qX -v ON_ERROR_STOP=1 <<SQL
DROP TABLE IF EXISTS bench_fit_large;
CREATE TABLE bench_fit_large AS SELECT r.i + g * $N1 AS i, r.f FROM bench_fit_small r, generate_series(0, $factor - 1) g;
ALTER TABLE bench_fit_large SET (parallel_workers = 2);
VACUUM ANALYZE bench_fit_large;
SQL

serial=(-c "SET max_parallel_workers_per_gather = 0")
parallel=(-c "SET max_parallel_workers_per_gather = 2" -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0")

# peak_anon_mb QUERY: runs QUERY (serial) in its own session and samples the backend's RssAnon
peak_anon_mb() {
  local app="fitbench$$_$RANDOM" peak=0 pid="" kb
  PGAPPNAME=$app psql -qX -c "SET max_parallel_workers_per_gather = 0" -c "SELECT pg_sleep(0.3)" -c "$1" >/dev/null &
  local job=$!
  while [ -z "$pid" ]; do
    pid=$(psql -qXAt -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$app'")
  done
  while kill -0 "$job" 2>/dev/null; do
    kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
    sleep 0.02
  done
  wait "$job"
  awk -v kb="$peak" 'BEGIN{ printf "%.1f", kb / 1024 }'
}

fit_q="SELECT calo_recon.iforest_info(calo_recon.iforest_fit(f)) FROM"
echo "fit benchmark $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), 6 features, 100 trees x 256"
for t in bench_fit_small bench_fit_large; do
  n=$(psql -qXAt -c "SELECT count(*) FROM $t")
  c_s=$(seconds "SELECT count(*) FROM $t" "${serial[@]}")
  r_s=$(seconds "SELECT sum(array_length(f, 1)) FROM $t" "${serial[@]}")
  f_s=$(seconds "$fit_q $t" "${serial[@]}")
  c_p=$(seconds "SELECT count(*) FROM $t" "${parallel[@]}")
  f_p=$(seconds "$fit_q $t" "${parallel[@]}")
  mem=$(peak_anon_mb "$fit_q $t")
  base=$(peak_anon_mb "SELECT count(*) FROM $t")
  printf '  %9d rows: serial   count(*) %7.3f s  read arrays %7.3f s  iforest_fit %7.3f s  fit/count %.2fx\n' \
    "$n" "$c_s" "$r_s" "$f_s" "$(awk -v a="$f_s" -v b="$c_s" 'BEGIN{print a/b}')"
  printf '  %9d rows: parallel count(*) %7.3f s                         iforest_fit %7.3f s  fit/count %.2fx\n' \
    "$n" "$c_p" "$f_p" "$(awk -v a="$f_p" -v b="$c_p" 'BEGIN{print a/b}')"
  printf '  %9d rows: backend peak RssAnon during iforest_fit %s MB (during count(*): %s MB)\n' "$n" "$mem" "$base"
done
psql -qX -c "\copy (SELECT array_to_string(f, ',') || ',0' FROM bench_fit_small) TO '/tmp/bench_fit_rows.csv'"
sed -i '1i x1,x2,x3,x4,x5,x6,label' /tmp/bench_fit_rows.csv
$PY bench/anomaly/fit_sklearn.py /tmp/bench_fit_rows.csv
rm -f /tmp/bench_fit_rows.csv
