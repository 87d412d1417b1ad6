#!/usr/bin/env bash
# Parity of calo_recon's anomaly models with scikit-learn 1.2 on the
# datasets in test/data/datasets (last column = label):
#   1. a scikit-learn IsolationForest exported as JSON and imported with
#      iforest_from_json scores every row like -score_samples: max |diff| <= 1e-9;
#   2. our own iforest_fit reaches a mean ROC AUC within 0.01 of
#      scikit-learn's, both over SEEDS seeds (default 20: the AUC of one
#      forest varies with its seed by about 0.018 on annthyroid, so a 5-seed
#      mean moves by about 0.008 and two of them may differ by more than 0.01
#      by chance alone; the seeds are fixed, so the result is deterministic);
#   3. scaler_fit / scaler_transform match StandardScaler to 1e-12 relative.
# Runs against the cluster of scripts/test.sh (PGHOST, PGPORT exported).
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
SEEDS=${SEEDS:-20}
EXPORT=tools/sklearn_export.py
work=$(mktemp -d /tmp/sklearn_parity.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
fail=0
db=parity_$$
createdb "$db" || exit 1
psql_q() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
psql_q -c "CREATE EXTENSION calo_recon" || exit 1

for csv in test/data/datasets/*.csv; do
  name=$(basename "$csv" .csv)
  header=$(head -n 1 "$csv")
  IFS=, read -r -a cols <<<"$header"
  nf=$((${#cols[@]} - 1))
  feats=$(printf 'c%d, ' $(seq 1 "$nf")); feats=${feats%, }
  coldefs=$(printf 'c%d float8, ' $(seq 1 "$nf"))
  arr=$(printf 'ds.c%d, ' $(seq 1 "$nf")); arr="ARRAY[${arr%, }]"

  $PY "$EXPORT" iforest "$csv" --seed 0 --json "$work/$name.json" --scores "$work/$name.scores" || { fail=1; continue; }
  $PY "$EXPORT" scaler "$csv" --json "$work/$name.scaler.json" --transformed "$work/$name.transformed" || { fail=1; continue; }
  sk_auc=$($PY "$EXPORT" auc "$csv" --seeds "$(seq -s, 0 $((SEEDS - 1)))") || { fail=1; continue; }

  out=$(psql_q -At <<SQL
CREATE TABLE ds (rn bigint GENERATED ALWAYS AS IDENTITY, $coldefs label int);
\copy ds ($feats, label) FROM '$csv' CSV HEADER
CREATE TABLE sk (rn bigint GENERATED ALWAYS AS IDENTITY, score float8);
\copy sk (score) FROM '$work/$name.scores'
CREATE TABLE skt (rn bigint GENERATED ALWAYS AS IDENTITY, $coldefs dummy int);
\copy skt ($feats) FROM '$work/$name.transformed' CSV
\set model \`cat $work/$name.json\`
\set scaler \`cat $work/$name.scaler.json\`
CREATE TABLE m AS SELECT calo_recon.iforest_from_json(:'model'::jsonb) AS m;
-- 1. imported scikit-learn forest
SELECT 'import_max_abs_diff', max(abs(calo_recon.iforest_score(m.m, $arr) - sk.score))
FROM ds JOIN sk USING (rn), m;
-- 2. our forests: mean ROC AUC over the seeds (ties get their average rank)
CREATE TABLE ours AS
SELECT seed, calo_recon.iforest_fit($arr, 100, 256, seed) AS m
FROM ds, generate_series(1, $SEEDS) AS seed GROUP BY seed;
-- LATERAL ... OFFSET 0 keeps each model on the outer side, so its rows are
-- scored in one run (the per-query model cache holds 8 decoded models)
WITH s AS (
  SELECT o.seed, x.label, x.score
  FROM ours o, LATERAL (SELECT ds.label, calo_recon.iforest_score(o.m, $arr) AS score FROM ds OFFSET 0) x
), r AS (
  SELECT seed, label,
         rank() OVER (PARTITION BY seed ORDER BY score)
         + (count(*) OVER (PARTITION BY seed, score) - 1) / 2.0 AS rnk
  FROM s
), auc AS (
  SELECT seed,
         (sum(rnk) FILTER (WHERE label = 1) - count(*) FILTER (WHERE label = 1) * (count(*) FILTER (WHERE label = 1) + 1) / 2.0)
         / (count(*) FILTER (WHERE label = 1) * count(*) FILTER (WHERE label = 0)) AS auc
  FROM r GROUP BY seed
)
SELECT 'ours_auc', round(avg(auc), 6) FROM auc;
-- 3. scaler
CREATE TABLE sc AS SELECT calo_recon.scaler_fit($arr) AS s FROM ds;
WITH ours AS (SELECT calo_recon.scaler_to_json(s) AS j FROM sc),
     theirs AS (SELECT :'scaler'::jsonb AS j),
     pairs AS (
       SELECT k, (o.j -> k ->> i)::float8 AS a, (t.j -> k ->> i)::float8 AS b,
              (t.j -> 'scale' ->> i)::float8 AS scale
       FROM ours o, theirs t, unnest(ARRAY['mean', 'var', 'scale']) AS k, generate_series(0, $nf - 1) AS i)
-- a mean is compared relative to the feature's scale (a centred feature has a mean of ~1e-10)
SELECT 'scaler_params_max_rel_diff',
       max(abs(a - b) / CASE k WHEN 'mean' THEN greatest(abs(b), scale) ELSE greatest(abs(b), 1e-300) END)
FROM pairs;
SELECT 'scaler_transform_max_rel_diff', max(abs(a - b) / greatest(abs(b), 1.0))
FROM ds JOIN skt USING (rn), sc,
     unnest(calo_recon.scaler_transform(sc.s, $arr), ARRAY[$(printf 'skt.c%d, ' $(seq 1 "$nf") | sed 's/, $//')]) AS u(a, b);
SQL
)
  st=$?
  psql_q -c "DROP TABLE IF EXISTS ds, sk, skt, m, ours, sc"
  if [ $st -ne 0 ]; then echo "sklearn_parity $name: SQL failed"; fail=1; continue; fi
  diff=$(awk -F'|' '$1=="import_max_abs_diff"{print $2}' <<<"$out")
  ours=$(awk -F'|' '$1=="ours_auc"{print $2}' <<<"$out")
  sp=$(awk -F'|' '$1=="scaler_params_max_rel_diff"{print $2}' <<<"$out")
  stf=$(awk -F'|' '$1=="scaler_transform_max_rel_diff"{print $2}' <<<"$out")
  echo "sklearn_parity $name: imported-forest max |ours - sklearn| = $diff; mean AUC over $SEEDS seeds ours $ours vs sklearn $sk_auc; scaler params max rel diff $sp, transform $stf"
  awk -v d="$diff" 'BEGIN{exit !(d != "" && d + 0 <= 1e-9)}' || { echo "  FAIL: imported scores differ by more than 1e-9"; fail=1; }
  awk -v a="$ours" -v b="$sk_auc" 'BEGIN{d=a-b; if(d<0)d=-d; exit !(a != "" && d <= 0.01)}' || { echo "  FAIL: AUC differs by more than 0.01"; fail=1; }
  awk -v a="$sp" -v b="$stf" 'BEGIN{exit !(a != "" && b != "" && a + 0 <= 1e-12 && b + 0 <= 1e-12)}' || { echo "  FAIL: scaler differs by more than 1e-12"; fail=1; }
done
dropdb "$db"
exit $fail
