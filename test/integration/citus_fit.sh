#!/usr/bin/env bash
# scaler_fit and iforest_fit on a Citus cluster (a coordinator and two
# workers, scripts/citus.sh): the plan runs the partial aggregation on the
# workers (worker_partial_agg in the shard queries, coord_combine_agg on the
# coordinator), and the forests and the scaler fitted over a distributed table
# are byte for byte the ones fitted on one node over the same rows (and seed).
# Skipped, with the reason, where Citus cannot be built.
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/citus.sh
trap citus_destroy EXIT
if ! citus_start calo_fit; then
  echo "citus_fit: skipped: $CITUS_SKIP"
  exit 0
fi
fail=0
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q -c "CREATE EXTENSION calo_recon" || exit 1
# 40,000 rows, one in ten a copy of another (the samples' counts matter),
# distributed over 32 shards; the same rows in a local table of the coordinator
q <<'SQL' || exit 1
CREATE TABLE fit_rows (i int, f float8[]);
SELECT create_distributed_table('fit_rows', 'i');
INSERT INTO fit_rows
SELECT i, ARRAY[sin(i * 0.7) * 3, cos(i * 1.3) * 3, (i % 97) * 0.25, (i % 13)::float8]
FROM generate_series(1, 36000) AS i;
INSERT INTO fit_rows SELECT 36000 + i, f FROM fit_rows WHERE i % 9 = 0;
CREATE TABLE fit_rows_local AS SELECT * FROM fit_rows;
SQL

# the plan: partial aggregates on the workers, combined on the coordinator
plan=$(q -c "EXPLAIN (VERBOSE, COSTS OFF) SELECT calo_recon.iforest_fit(f, 50, 128, 7), calo_recon.scaler_fit(f) FROM fit_rows")
if grep -q "worker_partial_agg" <<<"$plan" && grep -q "coord_combine_agg" <<<"$plan"; then
  echo "ok: the fits aggregate on the workers"
else
  echo "FAIL: the plan does not push the partial aggregation to the workers:"; echo "$plan"; fail=1
fi
if grep -qi "SELECT f FROM" <<<"$plan"; then
  echo "FAIL: the shard queries ship the rows to the coordinator:"; echo "$plan"; fail=1
fi

# the models: the cluster's against one node's
read -r same_forest same_extended same_default scaler_close rows < <(q -F ' ' <<'SQL'
WITH cluster AS (
    SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 50, 128, 7)) AS forest,
           calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 50, 128, 7, 2)) AS extended,
           calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f)) AS dflt,
           calo_recon.scaler_fit(f) AS scaler
    FROM fit_rows),
one_node AS (
    SELECT calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 50, 128, 7)) AS forest,
           calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f, 50, 128, 7, 2)) AS extended,
           calo_recon.iforest_to_bytea(calo_recon.iforest_fit(f)) AS dflt,
           calo_recon.scaler_fit(f) AS scaler
    FROM fit_rows_local)
SELECT c.forest = o.forest, c.extended = o.extended, c.dflt = o.dflt,
       c.scaler::text = o.scaler::text,
       (calo_recon.scaler_info(c.scaler)).samples
FROM cluster c, one_node o
SQL
)
echo "cluster vs one node: forest $same_forest, extended $same_extended, defaults $same_default, scaler $scaler_close ($rows rows)"
[ "$same_forest" = t ] && [ "$same_extended" = t ] && [ "$same_default" = t ] && [ "$scaler_close" = t ] &&
  [ "$rows" = 40000 ] || { echo "FAIL: the cluster's models differ from one node's"; fail=1; }

[ $fail -eq 0 ] && echo "citus_fit: ok"
exit $fail
