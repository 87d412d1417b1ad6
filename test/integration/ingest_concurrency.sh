#!/usr/bin/env bash
# Two sessions ingesting overlapping data at the same time neither fail nor
# store anything twice: the second waits for the first, then counts the
# overlap as duplicates (different file) or changes nothing (same content).
set -uo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "ingest_concurrency.sh: FAIL: $*"; exit 1; }
DB=calo_ingest_concurrency
OUT=$(mktemp -d)
cleanup() { dropdb --if-exists "$DB" >/dev/null 2>&1; rm -rf "$OUT"; }
trap cleanup EXIT

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB" || fail "createdb"
psql -qX -v ON_ERROR_STOP=1 -d "$DB" -c "CREATE EXTENSION calo_recon" >/dev/null || fail "CREATE EXTENSION"

LOG="'samples/balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/2024-01-14-[\$LATEST]7e318ad63a0ea6e15ec69be3ecd7570b/000000.gz'"
# session 1 holds its transaction open for a while after ingesting
session() {  # session NAME SUFFIX DELAY_BEFORE HOLD_AFTER
  psql -qAtX -v ON_ERROR_STOP=1 -d "$DB" >"$OUT/$1.out" 2>"$OUT/$1.err" <<SQL
SELECT pg_sleep($3);
BEGIN;
SELECT events, transactions, duplicates, conflicts, balance_errors, repeated
FROM calo_recon.ingest_log(calo_recon.read_log_file($LOG) || '$2', '$1');
SELECT pg_sleep($4);
COMMIT;
SQL
}
session first '' 0 2 &
p1=$!
session overlapping $'\n' 0.5 0 &
p2=$!
session same '' 0.7 0 &
p3=$!
wait $p1 || { cat "$OUT/first.err"; fail "first session failed"; }
wait $p2 || { cat "$OUT/overlapping.err"; fail "overlapping session failed"; }
wait $p3 || { cat "$OUT/same.err"; fail "same-content session failed"; }

grep -v '^$' "$OUT/first.out" | tail -n 1 | grep -qx '83|9|1|0|2|0' || { cat "$OUT/first.out"; fail "first counts"; }
grep -v '^$' "$OUT/overlapping.out" | tail -n 1 | grep -qx '83|0|10|0|0|3' || { cat "$OUT/overlapping.out"; fail "overlapping counts"; }
grep -v '^$' "$OUT/same.out" | tail -n 1 | grep -qx '0|0|0|0|0|0' || { cat "$OUT/same.out"; fail "same-content counts"; }
[ "$(psql -qAtX -d "$DB" -c 'SELECT count(*) FROM calo_recon.transactions')" = 9 ] || fail "transactions stored twice"
[ "$(psql -qAtX -d "$DB" -c 'SELECT count(*) FROM calo_recon.balance_errors')" = 2 ] || fail "balance errors stored twice"
[ "$(psql -qAtX -d "$DB" -c 'SELECT count(*) FROM calo_recon.ingested_files')" = 2 ] || fail "ingested_files rows"
echo "ingest_concurrency.sh: ok"
