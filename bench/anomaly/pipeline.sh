#!/usr/bin/env bash
# Anomaly pipeline benchmark: the Python prototype (CSV -> pandas ->
# StandardScaler -> IsolationForest(contamination=0.01) -> flags) against
# calo_recon (COPY the same CSV into transactions -> train_model(), which fits
# and scores every row -> SELECT count(*) FROM anomalies) on the same data.
# The prototype computes the features of calo_recon.transaction_features (the
# run checks that they are equal to within rounding) and scores every row once.
# Prints both wall times, their ratio and the Jaccard index of the model-flagged
# sets (the forests differ in random draws, so the sets are close, not equal),
# beside the Jaccard index of two prototype runs that differ only in the seed.
#
#   bash bench/anomaly/pipeline.sh [ROWS]        # default 50000; full size 1000000
#
# Runs in a throwaway cluster (scripts/cluster.sh); outputs in bench/out/anomaly.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-50000}
PY=/usr/bin/python3
PEER=bench/anomaly/prototype_pipeline.py
OUT=bench/out/anomaly
mkdir -p "$OUT"
CSV=$OUT/transactions-$ROWS.csv

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

[ -s "$CSV" ] || $PY "$PEER" generate --rows "$ROWS" --seed 1 --out "$CSV"
make -s

source scripts/cluster.sh
trap cluster_destroy EXIT
cluster_start
cluster_import "$CSV"
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION calo_recon"

# the currencies' minor units (amount_scaled) from their one home
psql -qX -v ON_ERROR_STOP=1 -c "\copy (SELECT code, minor_unit FROM calo_recon.currencies ORDER BY code) TO '$OUT/currencies.csv' (FORMAT csv, HEADER true)"

# --- the prototype ----------------------------------------------------------
t0=$(now)
read -r py_rows py_flagged _ < <($PY "$PEER" run --csv "$CSV" --flags "$OUT/prototype_flags.txt" --seed 42 \
                                   --currencies "$OUT/currencies.csv" --features-out "$OUT/prototype_features.csv")
t1=$(now)
py_seconds=$(elapsed "$t0" "$t1")

# --- calo_recon -------------------------------------------------------------
server_csv="$CR_ROOT/import/$(basename "$CSV")"
t0=$(now)
# the prototype has no insert-time alerts: they are off for this load
PGOPTIONS='-c calo_recon.alerts=off' \
  psql -qX -v ON_ERROR_STOP=1 -c "COPY calo_recon.transactions FROM '$server_csv' (FORMAT csv, HEADER true)"
t1=$(now)
psql -qX -v ON_ERROR_STOP=1 -c "SELECT calo_recon.train_model('bench', 0.01, 100, 256, 42)" >/dev/null
t2=$(now)
db_anomalies=$(psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM calo_recon.anomalies")
t3=$(now)
db_seconds=$(elapsed "$t0" "$t3")
psql -qAtX -c "SELECT txn_id FROM calo_recon.anomalies WHERE model_flag ORDER BY 1" > "$OUT/calo_recon_flags.txt"
db_rows=$(psql -qAtX -c "SELECT count(*) FROM calo_recon.transaction_scores")
db_flagged=$(wc -l < "$OUT/calo_recon_flags.txt")
# scoring alone, as refresh() does it for a whole table
t4=$(now)
psql -qAtX -c "SELECT calo_recon.score_transactions(false)" >/dev/null
t5=$(now)

read -r both _ _ jaccard < <($PY "$PEER" jaccard "$OUT/prototype_flags.txt" "$OUT/calo_recon_flags.txt")
# baseline: how much two sklearn forests that differ only in their seed agree
$PY "$PEER" run --csv "$CSV" --flags "$OUT/prototype_flags_seed7.txt" --seed 7 \
  --currencies "$OUT/currencies.csv" >/dev/null
# the peer computes the same features as calo_recon.transaction_features
psql -qX -v ON_ERROR_STOP=1 -c "\copy (SELECT txn_id, array_to_string(features, ',') FROM calo_recon.transaction_features) TO '$OUT/calo_recon_features.csv' (FORMAT csv)"
features_check=$($PY "$PEER" compare-features "$OUT/prototype_features.csv" "$OUT/calo_recon_features.csv")
read -r base_both _ _ base_jaccard < <($PY "$PEER" jaccard "$OUT/prototype_flags.txt" "$OUT/prototype_flags_seed7.txt")

echo "anomaly pipeline benchmark: $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), $ROWS transactions"
printf '  prototype (pandas + sklearn %s): %8.3f s  (%s rows, %s flagged)\n' \
  "$($PY -c 'import sklearn; print(sklearn.__version__)')" "$py_seconds" "$py_rows" "$py_flagged"
printf '  calo_recon total:                  %8.3f s  (%s rows scored, %s flagged by the model, %s rows in anomalies)\n' \
  "$db_seconds" "$db_rows" "$db_flagged" "$db_anomalies"
printf '    COPY %s s, train_model (fit + score all) %s s, count(anomalies) %s s; score_transactions(false) alone %s s\n' \
  "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")" "$(elapsed "$t2" "$t3")" "$(elapsed "$t4" "$t5")"
awk -v p="$py_seconds" -v d="$db_seconds" 'BEGIN { printf "  ratio prototype / calo_recon: %.2f\n", p / d }'
echo "  flag agreement with the prototype: $both in both; Jaccard $jaccard"
echo "  baseline, prototype seed 42 vs seed 7: $base_both in both; Jaccard $base_jaccard"
echo "  features, prototype vs calo_recon.transaction_features: $features_check"
case $features_check in equal*) ;; *) exit 1 ;; esac
