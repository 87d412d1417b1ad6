#!/usr/bin/env bash
# Generated exports against their answer keys, end to end.
#
# For several seeds and sizes: tools/calo_recon_gen writes an export with
# injected faults into $CR_ROOT/import/gen-<seed>-<n>; a fresh database with
# the extension ingests it with calo_recon.ingest_file; every count of the
# answer key's "expected" object (and the exact txn id set of each break
# kind) must equal what the tables and views show, and every event read must
# be accounted for (log_events, or quarantine when it is not a log event).
# The same for the bundled data/demo, and for --format csv loaded with COPY.
# First the generator alone: byte-identical reruns (gcc and a clang ASan +
# UBSan build), data/demo equal to its documented command, and an answer key
# that agrees with an independent regex reading (bench/parse/verify_key.py).
# Prints one line per check; exits 1 on any mismatch.
#
# Runs with the test cluster env exported (PGHOST, PGPORT, CR_ROOT).
#   GEN_RUNS="seed:n ..."   override the log runs (default below, < 2 minutes)
#   GEN_CSV_RUNS="seed:n ..."  override the --format csv runs
#   GEN_FAULT_RATE=F        pass --fault-rate F to the generator (default 0.01)
set -uo pipefail
cd "$(dirname "$0")/../.."
TOP=$(pwd)
: "${CR_ROOT:?run with the test cluster env (source scripts/cluster.sh; cluster_start)}"

GEN=$TOP/tools/calo_recon_gen
make -s -C tools calo_recon_gen >/dev/null || { echo "FAIL build tools/calo_recon_gen"; exit 1; }

RUNS=${GEN_RUNS:-"1:200 2:200 3:200 1:2000 2:2000 3:2000 1:20000"}
CSV_RUNS=${GEN_CSV_RUNS:-"4:20000"}
status=0

# The checker: one row per expectation, (label, key in "expected" or a
# number, SQL giving a count or a txn id list).  Same for log and CSV runs.
# the alerts against the breaks: the query alerts_shuffled.sh runs too
export ALERTS_VS_BREAKS=$TOP/test/integration/open_alerts_vs_breaks.sql
CHECK=$(mktemp --suffix=.py)
trap 'rm -f "$CHECK"' EXIT
cat > "$CHECK" <<'PY'
import json
import os
import sys

import psycopg2

mode, db, name, key_path = sys.argv[1:5]
exp = json.load(open(key_path))["expected"]
conn = psycopg2.connect(dbname=db)
conn.autocommit = True
cur = conn.cursor()
COUNT = "SELECT count(*) FROM calo_recon."
BREAK_IDS = "SELECT txn_id FROM calo_recon.balance_breaks WHERE break_kind = "
# events the parser could not read as log events are quarantined with a
# parse reason (malformed_event, bad_field, missing_field, truncated_event)
MALFORMED = ("quarantine WHERE event_no IS NOT NULL"
             " AND reason NOT IN ('conflict', 'truncated_event')")
ACCOUNTED = """SELECT (SELECT count(*) FROM calo_recon.log_events)
     + (SELECT count(*) FROM calo_recon.quarantine q
         WHERE q.event_no IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM calo_recon.log_events e
                            WHERE e.source_file = q.source_file AND e.event_no = q.event_no))"""
RECON = [
    ("distinct transactions (table)", "distinct_transactions", COUNT + "transactions"),
    ("legacy transactions (txn_type NULL)", "legacy_transactions",
     COUNT + "transactions WHERE txn_type IS NULL"),
    ("error blocks (balance_errors)", "error_blocks", COUNT + "balance_errors"),
    ("discrepancies (view)", "discrepancies", COUNT + "discrepancies"),
    ("overdrafts (view)", "overdrafts", COUNT + "overdrafts"),
    ("overdraft ids", "overdraft_ids", "SELECT txn_id FROM calo_recon.overdrafts"),
    ("arithmetic break ids", "arithmetic_break_ids", BREAK_IDS + "'arithmetic'"),
    ("chain break ids", "chain_break_ids", BREAK_IDS + "'chain'"),
    ("precision drift ids", "precision_drift_ids", "SELECT txn_id FROM calo_recon.precision_drift"),
]
LOGS = [
    ("events accounted for (log_events + quarantined non-events)", "events", ACCOUNTED),
    ("sync blocks (log_events of kind transaction)", "sync_blocks",
     COUNT + "log_events WHERE kind = 'transaction'"),
    ("conflicts (quarantine)", "conflicts", COUNT + "quarantine WHERE reason = 'conflict'"),
    ("conflict break ids", "conflict_ids", BREAK_IDS + "'conflict'"),
    ("negative-balance rejections", "negative_balance_rejections", COUNT + "negative_balance_rejections"),
    ("malformed events (quarantined, any parse reason)", "malformed_events", COUNT + MALFORMED),
    ("truncated events (quarantine)", "truncated_events",
     COUNT + "quarantine WHERE reason = 'truncated_event'"),
]
bad = 0


def report(what, want, got):
    global bad
    if isinstance(want, list):
        missing, extra = sorted(set(want) - set(got))[:3], sorted(set(got) - set(want))[:3]
        ok = sorted(want) == sorted(got)
        what += "" if ok else f" (missing {missing}, extra {extra})"
        want, got = f"{len(want)} ids", f"{len(got)} ids"
    else:
        ok = want == got
    bad += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {what}: expected {want}, got {got}")


def run(checks):
    for what, key, sql in checks:
        cur.execute(sql)
        rows = cur.fetchall()
        want = exp[key]
        report(what, want, [r[0] for r in rows] if isinstance(want, list) else rows[0][0])


def ingest():
    cur.execute("SELECT * FROM calo_recon.ingest_file(%s)", (name,))
    return dict(zip([d.name for d in cur.description], cur.fetchone()))


try:
    if mode == "logs":
        # in a transaction, to count its sequential reads of transactions.
        # Each file's look-ups read the table whole only while it is small
        # (the planner's choice; about 10 passes in all here), then through
        # the key; a plan cached while it was small read it whole once per
        # file: 45 passes at 2,000 transactions, 418 at 20,000
        cur.execute("BEGIN")
        res = ingest()
        cur.execute("SELECT coalesce(pg_catalog.sum(s.seq_tup_read), 0) FROM pg_catalog.pg_stat_xact_user_tables s "
                    "WHERE s.relid = 'calo_recon.transactions'::pg_catalog.regclass")
        scanned = int(cur.fetchone()[0])
        cur.execute("COMMIT")
        report(f"rows of transactions read by sequential scans in ingest_file ({scanned}): "
               "at most 20 passes over the stored rows", True, scanned <= 20 * exp["distinct_transactions"])
        for what, key, field, extra in [
                ("events read by ingest_file", "events", "events", 0),
                ("log files ingested", "log_files", "files", 0),
                # the answer key itself is one more non-log file of the tree
                ("junk files skipped (+ answer-key.json)", "junk_files", "skipped_files", 1),
                ("distinct transactions (ingest_file)", "distinct_transactions", "transactions", 0),
                ("duplicate deliveries (ingest_file)", "duplicate_deliveries", "duplicates", 0),
                ("conflicts (ingest_file)", "conflicts", "conflicts", 0)]:
            report(what, exp[key] + extra, res[field])
        # the call checked its rows' alerts at its end, in batches of
        # ALERT_BATCH_ROWS (src/glue/alert_batch_glue.c: the 20,000 run
        # takes two): the open chain and arithmetic alerts are the breaks,
        # and nothing is left queued
        with open(os.environ["ALERTS_VS_BREAKS"]) as f:
            cur.execute(f.read())
        _, _, extra, missing, _, queued = cur.fetchone()
        report("open chain and arithmetic alerts differing from balance_breaks", 0, extra + missing)
        report("rows left in alert_queue", 0, queued)
        run(LOGS)
    run(RECON)
    if mode == "logs":
        report("second ingest_file stores no transaction", 0, ingest()["transactions"])
        run([("transactions after the second ingest_file",) + RECON[0][1:]])
except psycopg2.Error as e:
    print(f"FAIL {name}: {e.pgcode}: {e.pgerror.strip()}")
    bad += 1
sys.exit(1 if bad else 0)
PY

# The generator itself: same arguments, byte-identical tree; and its answer
# key agrees with an independent regex reading of the logs (no database).
tmp=$(mktemp -d)
"$GEN" --seed 9 --transactions 3000 --out "$tmp/a" 2>/dev/null &&
  "$GEN" --seed 9 --transactions 3000 --out "$tmp/b" 2>/dev/null &&
  diff -r "$tmp/a" "$tmp/b" >/dev/null
if [ $? -eq 0 ]; then echo "ok   generator: same seed and arguments give a byte-identical export"
else echo "FAIL generator: output differs between two runs with the same arguments"; status=1; fi
# another compiler, with ASan + UBSan: no memory error, and the same bytes
# (the output must not hang on unspecified evaluation order)
if clang -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -o "$tmp/gen_asan" \
     tools/gen/*.c -lz 2>"$tmp/clang.err" &&
   "$tmp/gen_asan" --seed 9 --transactions 3000 --out "$tmp/asan" 2>/dev/null &&
   "$tmp/gen_asan" --seed 9 --transactions 300 --format csv --out "$tmp/asan-csv" 2>/dev/null &&
   diff -r "$tmp/a" "$tmp/asan" >/dev/null; then
  echo "ok   generator: clang ASan+UBSan build runs clean and writes the same bytes as the gcc build"
else
  head -5 "$tmp/clang.err"; echo "FAIL generator: clang ASan+UBSan build failed or wrote other bytes"; status=1
fi
"$GEN" --seed 10 --transactions 3000 --out "$tmp/c" 2>/dev/null
if ! diff -r "$tmp/a" "$tmp/c" >/dev/null; then echo "ok   generator: another seed gives another export"
else echo "FAIL generator: seeds 9 and 10 gave the same export"; status=1; fi
if /usr/bin/python3 bench/parse/verify_key.py "$tmp/a" >"$tmp/verify.out"; then
  echo "ok   generator: answer key agrees with a regex reading of its logs ($(grep -c '^ok' "$tmp/verify.out") checks)"
else
  grep -v '^ok' "$tmp/verify.out"; echo "FAIL generator: answer key disagrees with its logs"; status=1
fi
# data/demo is exactly what its documented command writes
"$GEN" --seed 2024 --transactions 2000 --out "$tmp/demo" 2>/dev/null
if diff -r "$tmp/demo" data/demo >/dev/null; then
  echo "ok   generator: data/demo = calo_recon_gen --seed 2024 --transactions 2000 --out data/demo"
else echo "FAIL generator: data/demo differs from what its command writes (regenerate it)"; status=1; fi
rm -rf "$tmp"
# check_tree logs|csv NAME: a fresh database loads $CR_ROOT/import/NAME
# (ingest_file, or COPY of the CSV files) and the checker compares.
check_tree() {
  local format=$1 name=$2 dir=$CR_ROOT/import/$2 db=${2//-/_}
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$dir"
  dropdb --if-exists "$db" 2>/dev/null
  createdb "$db" && psql -qX -d "$db" -c "CREATE EXTENSION calo_recon" >/dev/null ||
    { echo "FAIL $name: createdb or CREATE EXTENSION"; return 1; }
  # CSV goes straight into the tables with COPY, then a reconcile
  if [ "$format" = csv ] && ! psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
\copy calo_recon.transactions FROM '$dir/transactions.csv' CSV HEADER
\copy calo_recon.balance_errors FROM '$dir/balance_errors.csv' CSV HEADER
SELECT calo_recon.reconcile();
SQL
  then echo "FAIL $name: COPY or reconcile failed"; return 1; fi
  /usr/bin/python3 "$CHECK" "$format" "$db" "$name" "$dir/answer-key.json"
  local st=$?
  dropdb "$db"
  rm -rf "$dir"
  return $st
}

# one_run logs|csv SEED N: generate, then check_tree
one_run() {
  local format=$1 seed=$2 n=$3 name
  name=gen-$seed-$n
  [ "$format" = csv ] && name=gen-csv-$seed-$n
  rm -rf "$CR_ROOT/import/$name"
  "$GEN" --seed "$seed" --transactions "$n" --format "$format" \
         ${GEN_FAULT_RATE:+--fault-rate $GEN_FAULT_RATE} --out "$CR_ROOT/import/$name" 2>/dev/null ||
    { echo "FAIL $name: generator"; return 1; }
  check_tree "$format" "$name"
}

# the bundled demo export against its own answer key
rm -rf "$CR_ROOT/import/gen-demo"
cp -r data/demo "$CR_ROOT/import/gen-demo"
check_tree logs gen-demo || status=1
for run in $RUNS; do one_run logs "${run%%:*}" "${run##*:}" || status=1; done
for run in $CSV_RUNS; do one_run csv "${run%%:*}" "${run##*:}" || status=1; done
exit $status
