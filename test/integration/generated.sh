#!/usr/bin/env bash
# Generated exports against their answer keys, end to end.
#
# For several seeds and sizes: tools/calo_recon_gen writes an export with
# injected faults into $CR_ROOT/import/gen-<seed>-<n>; a fresh database with
# the extension ingests it with calo_recon.ingest_file; every count of the
# answer key's "expected" object (and the exact txn id set of each break
# kind) must equal what the tables and views show, and every event read must
# be accounted for (log_events, or quarantine when it is not a log event).
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

RUNS=${GEN_RUNS:-"1:200 2:200 3:200 1:2000 2:2000 3:2000 1:20000 2:20000 3:20000"}
CSV_RUNS=${GEN_CSV_RUNS:-"4:20000"}
status=0

# The generator itself: same arguments, byte-identical tree; and its answer
# key agrees with an independent regex reading of the logs (no database).
tmp=$(mktemp -d)
"$GEN" --seed 9 --transactions 3000 --out "$tmp/a" 2>/dev/null &&
  "$GEN" --seed 9 --transactions 3000 --out "$tmp/b" 2>/dev/null &&
  diff -r "$tmp/a" "$tmp/b" >/dev/null
if [ $? -eq 0 ]; then echo "ok   generator: same seed and arguments give a byte-identical export"
else echo "FAIL generator: output differs between two runs with the same arguments"; status=1; fi
"$GEN" --seed 10 --transactions 3000 --out "$tmp/c" 2>/dev/null
if ! diff -r "$tmp/a" "$tmp/c" >/dev/null; then echo "ok   generator: another seed gives another export"
else echo "FAIL generator: seeds 9 and 10 gave the same export"; status=1; fi
if /usr/bin/python3 bench/parse/verify_key.py "$tmp/a" >"$tmp/verify.out"; then
  echo "ok   generator: answer key agrees with a regex reading of its logs ($(grep -c '^ok' "$tmp/verify.out") checks)"
else
  grep -v '^ok' "$tmp/verify.out"; echo "FAIL generator: answer key disagrees with its logs"; status=1
fi
rm -rf "$tmp"
for run in $RUNS; do
  seed=${run%%:*}
  n=${run##*:}
  name=gen-$seed-$n
  dir=$CR_ROOT/import/$name
  rm -rf "$dir"
  "$GEN" --seed "$seed" --transactions "$n" ${GEN_FAULT_RATE:+--fault-rate $GEN_FAULT_RATE} --out "$dir" 2>/dev/null || { echo "FAIL $name: generator"; status=1; continue; }
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$dir"
  db=gen_${seed}_${n}
  dropdb --if-exists "$db" 2>/dev/null; createdb "$db" || { echo "FAIL $name: createdb"; status=1; continue; }
  psql -qX -d "$db" -c "CREATE EXTENSION calo_recon" >/dev/null || { echo "FAIL $name: CREATE EXTENSION"; status=1; continue; }

  /usr/bin/python3 - "$db" "$name" "$dir/answer-key.json" <<'PY'
import json
import sys

import psycopg2

db, name, key_path = sys.argv[1:4]
key = json.load(open(key_path))
exp = key["expected"]
conn = psycopg2.connect(dbname=db)
conn.autocommit = True
cur = conn.cursor()
bad = 0


def check(what, want, got):
    global bad
    ok = want == got
    bad += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {what}: expected {want}, got {got}")


def one(sql, *args):
    cur.execute(sql, args)
    return cur.fetchone()[0]


def ids(sql):
    cur.execute(sql)
    return sorted(r[0] for r in cur.fetchall())


def check_ids(what, want, sql):
    got = ids(sql)
    want = sorted(want)
    if want == got:
        check(what + " (id set)", len(want), len(got))
    else:
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        check(what + f" (id set; missing {missing} extra {extra})", len(want), len(got))


try:
    cur.execute("SELECT * FROM calo_recon.ingest_file(%s)", (name,))
    res = dict(zip([d.name for d in cur.description], cur.fetchone()))
except psycopg2.Error as e:
    print(f"FAIL {name}: ingest_file raised {e.pgcode}: {e.pgerror.strip()}")
    sys.exit(1)

try:
    check("events read by ingest_file", exp["events"], res["events"])
    accounted = one("""
        SELECT (SELECT count(*) FROM calo_recon.log_events)
             + (SELECT count(*) FROM calo_recon.quarantine q
                 WHERE q.event_no IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM calo_recon.log_events e
                                    WHERE e.source_file = q.source_file
                                      AND e.event_no = q.event_no))""")
    check("events accounted for (log_events + quarantined non-events)", exp["events"], accounted)
    check("log files ingested", exp["log_files"], res["files"])
    # the answer key itself is one more non-log file of the tree
    check("junk files skipped (+ answer-key.json)", exp["junk_files"] + 1, res["skipped_files"])
    check("distinct transactions (ingest_file)", exp["distinct_transactions"], res["transactions"])
    check("distinct transactions (table)", exp["distinct_transactions"],
          one("SELECT count(*) FROM calo_recon.transactions"))
    check("legacy transactions (txn_type NULL)", exp["legacy_transactions"],
          one("SELECT count(*) FROM calo_recon.transactions WHERE txn_type IS NULL"))
    check("sync blocks (log_events of kind transaction)", exp["sync_blocks"],
          one("SELECT count(*) FROM calo_recon.log_events WHERE kind = 'transaction'"))
    check("duplicate deliveries", exp["duplicate_deliveries"], res["duplicates"])
    check("conflicts (ingest_file)", exp["conflicts"], res["conflicts"])
    check("conflicts (quarantine)", exp["conflicts"],
          one("SELECT count(*) FROM calo_recon.quarantine WHERE reason = 'conflict'"))
    check("error blocks (balance_errors)", exp["error_blocks"],
          one("SELECT count(*) FROM calo_recon.balance_errors"))
    check("discrepancies (view)", exp["discrepancies"],
          one("SELECT count(*) FROM calo_recon.discrepancies"))
    check("negative-balance rejections", exp["negative_balance_rejections"],
          one("SELECT count(*) FROM calo_recon.negative_balance_rejections"))
    # the parser names what is broken: malformed_event, bad_field, missing_field
    check("malformed events (quarantined events, any parse reason)", exp["malformed_events"],
          one("SELECT count(*) FROM calo_recon.quarantine WHERE event_no IS NOT NULL"
              " AND reason NOT IN ('conflict', 'truncated_event')"))
    check("truncated events (quarantine)", exp["truncated_events"],
          one("SELECT count(*) FROM calo_recon.quarantine WHERE reason = 'truncated_event'"))
    check("overdrafts (view)", exp["overdrafts"], one("SELECT count(*) FROM calo_recon.overdrafts"))
    check_ids("overdrafts", exp["overdraft_ids"], "SELECT txn_id FROM calo_recon.overdrafts")
    check_ids("arithmetic breaks", exp["arithmetic_break_ids"],
              "SELECT txn_id FROM calo_recon.balance_breaks WHERE break_kind = 'arithmetic'")
    check_ids("chain breaks", exp["chain_break_ids"],
              "SELECT txn_id FROM calo_recon.balance_breaks WHERE break_kind = 'chain'")
    check_ids("conflict breaks", exp["conflict_ids"],
              "SELECT txn_id FROM calo_recon.balance_breaks WHERE break_kind = 'conflict'")
    check_ids("precision drift", exp["precision_drift_ids"],
              "SELECT txn_id FROM calo_recon.precision_drift")
    cur.execute("SELECT * FROM calo_recon.ingest_file(%s)", (name,))
    again = dict(zip([d.name for d in cur.description], cur.fetchone()))
    check("second ingest_file adds no transaction", 0, again["transactions"])
    check("second ingest_file: transactions table unchanged", exp["distinct_transactions"],
          one("SELECT count(*) FROM calo_recon.transactions"))
except psycopg2.Error as e:
    print(f"FAIL {name}: query raised {e.pgcode}: {e.pgerror.strip()}")
    bad += 1
sys.exit(1 if bad else 0)
PY
  [ $? -eq 0 ] || status=1
  dropdb "$db"
  rm -rf "$dir"
done

# --format csv: COPY straight into the tables, reconcile, same expectations.
for run in $CSV_RUNS; do
  seed=${run%%:*}
  n=${run##*:}
  name=gen-csv-$seed-$n
  dir=$CR_ROOT/import/$name
  rm -rf "$dir"
  "$GEN" --seed "$seed" --transactions "$n" --format csv --out "$dir" 2>/dev/null || { echo "FAIL $name: generator"; status=1; continue; }
  db=gen_csv_${seed}_${n}
  dropdb --if-exists "$db" 2>/dev/null; createdb "$db" || { echo "FAIL $name: createdb"; status=1; continue; }
  if ! psql -qX -v ON_ERROR_STOP=1 -d "$db" >/dev/null <<SQL
CREATE EXTENSION calo_recon;
\copy calo_recon.transactions FROM '$dir/transactions.csv' CSV HEADER
\copy calo_recon.balance_errors FROM '$dir/balance_errors.csv' CSV HEADER
SELECT calo_recon.reconcile();
SQL
  then echo "FAIL $name: COPY or reconcile failed"; status=1; continue; fi
  /usr/bin/python3 - "$db" "$name" "$dir/answer-key.json" <<'PY'
import json
import sys

import psycopg2

db, name, key_path = sys.argv[1:4]
exp = json.load(open(key_path))["expected"]
cur = psycopg2.connect(dbname=db).cursor()
bad = 0


def check(what, want, sql):
    global bad
    cur.execute(sql)
    rows = cur.fetchall()
    got = rows[0][0] if isinstance(want, int) else sorted(r[0] for r in rows)
    if not isinstance(want, int):
        want = sorted(want)
    ok = want == got
    bad += not ok
    shown = (lambda v: v if isinstance(v, int) else f"{len(v)} ids")
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {what}: expected {shown(want)}, got {shown(got)}")


check("transactions", exp["distinct_transactions"], "SELECT count(*) FROM calo_recon.transactions")
check("legacy transactions", exp["legacy_transactions"],
      "SELECT count(*) FROM calo_recon.transactions WHERE txn_type IS NULL")
check("balance errors", exp["error_blocks"], "SELECT count(*) FROM calo_recon.balance_errors")
check("discrepancies", exp["discrepancies"], "SELECT count(*) FROM calo_recon.discrepancies")
check("overdraft id set", exp["overdraft_ids"], "SELECT txn_id FROM calo_recon.overdrafts")
check("arithmetic break id set", exp["arithmetic_break_ids"],
      "SELECT txn_id FROM calo_recon.balance_breaks WHERE break_kind = 'arithmetic'")
check("chain break id set", exp["chain_break_ids"],
      "SELECT txn_id FROM calo_recon.balance_breaks WHERE break_kind = 'chain'")
check("precision drift id set", exp["precision_drift_ids"], "SELECT txn_id FROM calo_recon.precision_drift")
sys.exit(1 if bad else 0)
PY
  [ $? -eq 0 ] || status=1
  dropdb "$db"
  rm -rf "$dir"
done
exit $status
