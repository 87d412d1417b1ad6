#!/usr/bin/env bash
# Fitting on one node against fitting on a Citus cluster (scripts/citus.sh: a
# coordinator and CITUS_WORKERS workers, default 2, on this machine):
# iforest_fit(f) (100 trees x 256) and scaler_fit(f) over the same N rows of
# 6 features in a local table of the coordinator and in a table distributed
# over 32 shards, at N1 and N2 rows, with the ratio; and a check that the two
# forests are the same bytes.  On one machine the workers share its cores
# with the coordinator: the figures show what the pushdown costs and how the
# time grows with the rows, not what more machines would give.
#   N1=100000 N2=400000 bash bench/anomaly/fit_citus.sh     (a quick run)
source "$(dirname "$0")/common.sh"
N1=${N1:-1000000}
N2=${N2:-4000000}
make -s >/dev/null
source scripts/citus.sh
trap citus_destroy EXIT
citus_start calo_bench || { echo "fit_citus: skipped: $CITUS_SKIP"; exit 0; }
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION calo_recon"

echo "fit on one node vs Citus $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), load $(cut -d' ' -f1 /proc/loadavg), $CITUS_WORKERS workers, 32 shards, 6 features"
printf '  %10s  %-22s %10s %10s %8s  %s\n' rows fit "one node" cluster ratio "same forest"
for n in "$N1" "$N2"; do
  bench_rows bench_local "$n" >/dev/null
  psql -qX -v ON_ERROR_STOP=1 -o /dev/null <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS bench_dist;
CREATE TABLE bench_dist (i bigint, f float8[]);
SELECT create_distributed_table('bench_dist', 'i');
INSERT INTO bench_dist SELECT i, f FROM bench_local;
VACUUM ANALYZE bench_dist;
SQL
  for fit in "calo_recon.iforest_fit(f)" "calo_recon.scaler_fit(f)"; do
    one=$(seconds "SELECT $fit IS NOT NULL FROM bench_local" -c "SET max_parallel_workers_per_gather = 0")
    dist=$(seconds "SELECT $fit IS NOT NULL FROM bench_dist")
    same=""
    [ "$fit" = "calo_recon.iforest_fit(f)" ] && same=$(psql -qXAt -c \
      "SELECT (SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f)) FROM bench_local)
            = (SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f)) FROM bench_dist)")
    printf '  %10d  %-22s %9.3fs %9.3fs %7.2fx  %s\n' "$n" "${fit#calo_recon.}" "$one" "$dist" \
      "$(awk -v a="$dist" -v b="$one" 'BEGIN{print a/b}')" "$same"
  done
done
