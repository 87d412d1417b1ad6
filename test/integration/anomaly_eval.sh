#!/usr/bin/env bash
# The anomaly model against planted behavioural anomalies, small and on a
# fixed seed (bench/anomaly/evaluate.sh, README "Evaluation"): a generated
# export of 20,000 transactions with about 100 planted anomalies (spend,
# vat, hour, double, topup), a model trained with the defaults, and the
# recall, precision and explanations it reaches.
#
# It asserts issue 9's targets: recall >= 0.8 overall and >= 0.6 for each
# kind, the explanation naming the planted cause in >= 0.9 of the caught
# rows (seed 101 was not used while tuning; README "Evaluation" has the
# figures). First, the generator itself: every user's unlabeled
# transactions without an injected fault keep the user's habit, a window of 8 UTC hours (9 allowed:
# a request's events may cross the hour after the user is picked), so an
# hour anomaly is never left unlabeled.
#
# Runs against the cluster of scripts/test.sh (PGHOST, PGPORT exported).
set -uo pipefail
cd "$(dirname "$0")/../.."
status=0
make -s -C tools calo_recon_gen >/dev/null
gen=$(mktemp -d)
tools/calo_recon_gen --seed 101 --transactions 20000 --format csv --behaviour 0.005 --fault-rate 0.001 \
  --out "$gen" 2>/dev/null
habit=$(/usr/bin/python3 - "$gen" <<'PY'
import csv, json, sys
from collections import defaultdict
out = sys.argv[1]
planted = {r['txn_id'] for r in csv.DictReader(open(out + '/anomaly-labels.csv'))}
# an injected fault cancels the plant due, on the user already picked for it
faulted = {t['id'] for t in json.load(open(out + '/answer-key.json'))['transactions'] if t['truth']}
hours = defaultdict(set)
for r in csv.DictReader(open(out + '/transactions.csv')):
    if r['txn_id'] not in planted and r['txn_id'] not in faulted:
        hours[r['user_id']].add(int(r['logged_at'][11:13]))
off = [u for u, hs in hours.items() if not any(all((h - s) % 24 < 9 for h in hs) for s in range(24))]
print(f"{len(off)} of {len(hours)}")
PY
)
rm -rf "$gen"
case $habit in
  "0 of "*) echo "ok generator: unlabeled transactions keep their users' hours ($habit users off)";;
  *) echo "FAIL generator: users with unlabeled transactions outside their hours: $habit"; status=1;;
esac
out=$(EVAL_RUNS="101:20000" EVAL_ASSERT=1 bash bench/anomaly/evaluate.sh 2>&1) || status=1
echo "$out" | grep -v NOTICE
# every kind was planted and the explanations were checked at all (grep
# reads a here-string: "echo | grep -q" under pipefail fails at random when
# grep exits before echo has written everything)
for kind in spend vat hour double topup; do
  grep -Eq "^101 +20000 +$kind +[1-9]" <<<"$out" || { echo "FAIL no planted $kind rows"; status=1; }
done
grep -Eq "^101 +20000 +all .* 0\.9[0-9]{2} +ok|^101 +20000 +all .* 1\.000 +ok" <<<"$out" \
  || { echo "FAIL overall line missing or below the floor"; status=1; }
[ $status -eq 0 ] && echo "ok anomaly evaluation (seed 101, 20000 rows)"
exit $status
