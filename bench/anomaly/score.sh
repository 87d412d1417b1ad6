#!/usr/bin/env bash
# Scoring throughput: SELECT iforest_score(m, f) FROM t over N rows of 6
# features (default 1,000,000) with a 100-tree x 256 forest, against
# scikit-learn's score_samples on the same rows with the same forest
# (fitted by scikit-learn, imported with iforest_from_json), serial and
# parallel.  Prints rows/s of each and the ratio.
# Then score_transactions() over N stored transactions (the generated
# export of bench/anomaly/pipeline.sh), features, scaler, forest, threshold,
# explanations and the bulk write of transaction_scores included, against
# scikit-learn's score_samples on the same rows' precomputed features
# (exported from calo_recon.transaction_features, standardized).
#   N=100000 bash bench/anomaly/score.sh      (a quick run)
source "$(dirname "$0")/common.sh"
N=${N:-1000000}
work=$(mktemp -d /tmp/bench_score.XXXXXX)
chmod 755 "$work"
bench_cluster
bench_rows bench_score_rows "$N"
psql -qX -v ON_ERROR_STOP=1 -c "\copy (SELECT array_to_string(f, ',') || ',0' FROM bench_score_rows ORDER BY i) TO '$work/rows.csv'"
sed -i '1i x1,x2,x3,x4,x5,x6,label' "$work/rows.csv"

# scikit-learn: fit, export, time score_samples
sk_line=$($PY bench/anomaly/score_sklearn.py "$work/rows.csv" "$work/model.json")
sk_rate=$(sed -n 's/.*rows_per_s=\([0-9.]*\).*/\1/p' <<<"$sk_line")

psql -qX -v ON_ERROR_STOP=1 <<SQL
\set model \`cat $work/model.json\`
DROP TABLE IF EXISTS bench_model;
CREATE TABLE bench_model AS
SELECT calo_recon.iforest_from_json(:'model'::jsonb) AS sk,
       (SELECT calo_recon.iforest_fit(f, 100, 256, 1) FROM bench_score_rows) AS ours;
SQL
q_sk="SELECT sum(calo_recon.iforest_score(m.sk, r.f)) FROM bench_score_rows r, bench_model m"
q_ours="SELECT sum(calo_recon.iforest_score(m.ours, r.f)) FROM bench_score_rows r, bench_model m"
serial=(-c "SET max_parallel_workers_per_gather = 0")
parallel=(-c "SET max_parallel_workers_per_gather = 2" -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0")
t_sk_serial=$(seconds "$q_sk" "${serial[@]}")
t_sk_parallel=$(seconds "$q_sk" "${parallel[@]}")
t_ours_serial=$(seconds "$q_ours" "${serial[@]}")
t_count=$(seconds "SELECT count(*) FROM bench_score_rows r, bench_model m" "${serial[@]}")
check=$(psql -qXAt -c "SELECT max(abs(calo_recon.iforest_score(m.sk, r.f))) <= 1 FROM bench_score_rows r, bench_model m")

rate() { awk -v n="$N" -v t="$1" 'BEGIN{ printf "%.0f", n / t }'; }
echo "score benchmark $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), $N rows x 6 features, 100 trees x 256"
echo "  scikit-learn score_samples:                 $(printf '%.0f' "$sk_rate") rows/s"
echo "  iforest_score, sklearn forest, serial:      $(rate "$t_sk_serial") rows/s  (${t_sk_serial} s)  ratio $(awk -v a="$(rate "$t_sk_serial")" -v b="$sk_rate" 'BEGIN{printf "%.1f", a/b}')x"
echo "  iforest_score, sklearn forest, 2 workers:   $(rate "$t_sk_parallel") rows/s  (${t_sk_parallel} s)  ratio $(awk -v a="$(rate "$t_sk_parallel")" -v b="$sk_rate" 'BEGIN{printf "%.1f", a/b}')x"
echo "  iforest_score, own forest, serial:          $(rate "$t_ours_serial") rows/s  (${t_ours_serial} s)"
echo "  scan of the same rows (count(*)), serial:   $(rate "$t_count") rows/s  (${t_count} s)"
[ "$check" = t ] || { echo "scores out of range"; exit 1; }

# --- score_transactions() over N stored transactions --------------------------
csv=bench/out/anomaly/transactions-$N.csv
mkdir -p bench/out/anomaly
[ -s "$csv" ] || $PY bench/anomaly/prototype_pipeline.py generate --rows "$N" --seed 1 --out "$csv"
cp "$csv" "$work/transactions.csv"
chmod 644 "$work/transactions.csv"
PGOPTIONS='-c calo_recon.alerts=off' psql -qX -v ON_ERROR_STOP=1 \
  -c "TRUNCATE calo_recon.transactions" \
  -c "\copy calo_recon.transactions FROM '$work/transactions.csv' (FORMAT csv, HEADER true)" \
  -c "VACUUM ANALYZE calo_recon.transactions" \
  -c "SELECT calo_recon.train_model('bench', 0.01, 100, 256, 42)" >/dev/null
psql -qX -v ON_ERROR_STOP=1 -c "\copy (SELECT array_to_string(features, ',') FROM calo_recon.transaction_features) TO '$work/features.csv'"
sk_txn_line=$($PY bench/anomaly/score_transactions_sklearn.py "$work/features.csv")
sk_txn_rate=$(sed -n 's/.*rows_per_s=\([0-9.]*\).*/\1/p' <<<"$sk_txn_line")
# every stored transaction unscored by the active model: what refresh() scores after a load
fresh() { psql -qX -v ON_ERROR_STOP=1 -c "TRUNCATE calo_recon.transaction_scores" -c "CHECKPOINT" >/dev/null; }
# one run (a second would find nothing left to score)
once() {
  psql -qX -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1 \
    | awk '{ printf "%.3f", $1 / 1000 }'
}
fresh; t_new_1=$(once "SELECT calo_recon.score_transactions()")
fresh; t_new_2=$(once "SELECT calo_recon.score_transactions()")
t_new=$(awk -v a="$t_new_1" -v b="$t_new_2" 'BEGIN{ print (a < b ? a : b) }')
t_again=$(seconds "SELECT calo_recon.score_transactions(false)")
scored=$(psql -qXAt -c "SELECT count(*) FROM calo_recon.transaction_scores")
[ "$scored" = "$N" ] || { echo "score_transactions stored $scored scores, expected $N"; exit 1; }
echo "  scikit-learn score_samples, $N transactions' $(head -1 "$work/features.csv" | tr ',' '\n' | wc -l) precomputed features: $(printf '%.0f' "$sk_txn_rate") rows/s"
echo "  score_transactions(), $N stored transactions, none scored yet:  $(rate "$t_new") rows/s  (${t_new} s)  ratio $(awk -v a="$(rate "$t_new")" -v b="$sk_txn_rate" 'BEGIN{printf "%.2f", a/b}')x"
echo "  score_transactions(false), all $N scored again (replaces them):  $(rate "$t_again") rows/s  (${t_again} s)  ratio $(awk -v a="$(rate "$t_again")" -v b="$sk_txn_rate" 'BEGIN{printf "%.2f", a/b}')x"
rm -rf "$work"
