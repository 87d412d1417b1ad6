# Shared by the anomaly benchmarks: a throwaway cluster (unless one is
# already exported in PGHOST/PGPORT), the synthetic mammography-like rows,
# and a timer.  Source from bench/anomaly/*.sh.
set -euo pipefail
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$TOP"
PY=/usr/bin/python3

bench_cluster() {
  if [ -z "${PGHOST:-}" ]; then
    make -s >/dev/null
    source scripts/cluster.sh
    trap cluster_destroy EXIT
    cluster_start "shared_buffers = '1GB'" "max_parallel_workers = 8" "work_mem = '64MB'" >/dev/null
  fi
  psql -qX -c "DROP EXTENSION IF EXISTS calo_recon CASCADE" -c "CREATE EXTENSION calo_recon" 2>/dev/null
}

# bench_rows TABLE N: N rows of 6 features (standard normals, a few scaled
# like mammography's skewed columns, 2 % shifted outliers), fixed seed.
bench_rows() {
  psql -qX -v ON_ERROR_STOP=1 <<SQL
DROP TABLE IF EXISTS $1;
SELECT setseed(0.42);
CREATE TABLE $1 AS
SELECT i, ARRAY[g1, g2 * 2 + 1, abs(g3) * 3, g4, g5 * 0.5, g6 + (CASE WHEN i % 50 = 0 THEN 6 ELSE 0 END)]::float8[] AS f
FROM (SELECT i,
             sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS g1,
             sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS g2,
             sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS g3,
             sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS g4,
             sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS g5,
             sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS g6
      FROM generate_series(1, $2) AS i) g;
ALTER TABLE $1 SET (parallel_workers = 2);
VACUUM ANALYZE $1;
SQL
}

# seconds QUERY [SET...]: wall time of a query, in seconds, best of 2 runs
seconds() {
  local q=$1; shift
  local best=""
  for _ in 1 2; do
    local ms
    ms=$(psql -qX -v ON_ERROR_STOP=1 "$@" -c '\timing on' -c "$q" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1)
    best=$(awk -v a="$best" -v b="$ms" 'BEGIN{ if (a == "" || b + 0 < a + 0) print b; else print a }')
  done
  awk -v ms="$best" 'BEGIN{ printf "%.3f", ms / 1000 }'
}
