#!/usr/bin/env bash
# The anomaly model against planted behavioural anomalies, small and on a
# fixed seed (bench/anomaly/evaluate.sh, README "Evaluation"): a generated
# export of 20,000 transactions with about 100 planted anomalies (spend,
# vat, hour, double, topup), a model trained with the defaults, and the
# recall, precision and explanations it reaches.
#
# It asserts what the features reach today, so that a change that loses
# ground fails: overall recall >= 0.5, the explanation naming the planted
# cause in >= 0.9 of the caught rows. Issue 9's targets (recall >= 0.8
# overall and >= 0.6 per kind) are not met yet: the hour and VAT kinds are
# rarely caught (README "Evaluation" has the figures).
#
# Runs against the cluster of scripts/test.sh (PGHOST, PGPORT exported).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(EVAL_RUNS="101:20000" EVAL_ASSERT=1 EVAL_MIN_RECALL=0.5 EVAL_MIN_KIND_RECALL=0 EVAL_MIN_NAMED=0.9 \
      bash bench/anomaly/evaluate.sh 2>&1)
status=$?
echo "$out" | grep -v NOTICE
# every kind was planted and the explanations were checked at all
for kind in spend vat hour double topup; do
  echo "$out" | grep -Eq "^101 +20000 +$kind +[1-9]" || { echo "FAIL no planted $kind rows"; status=1; }
done
echo "$out" | grep -Eq "^101 +20000 +all .* 0\.9[0-9]{2} +ok|^101 +20000 +all .* 1\.000 +ok" \
  || { echo "FAIL overall line missing or below the floor"; status=1; }
[ $status -eq 0 ] && echo "ok anomaly evaluation (seed 101, 20000 rows)"
exit $status
