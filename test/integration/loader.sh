#!/usr/bin/env bash
# calo_recon_load against the test cluster: loading the samples gives the same
# rows as the server-side ingest_file; a second run skips everything
# (resumable); a bad connection string or a damaged file fails with a message
# and a non-zero exit.  Runs with the cluster environment of scripts/test.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "loader.sh: FAIL: $*"; exit 1; }
LOADER=tools/calo_recon_load
DB_CLIENT=calo_load_client
DB_SERVER=calo_load_server
OUT=$(mktemp -d)
cleanup() {
  dropdb --if-exists "$DB_CLIENT" >/dev/null 2>&1
  dropdb --if-exists "$DB_SERVER" >/dev/null 2>&1
  rm -rf "$OUT"
}
trap cleanup EXIT

make -s tools PG_CONFIG=/usr/bin/pg_config >/dev/null || fail "make tools"
[ -x "$LOADER" ] || fail "no $LOADER"

for db in "$DB_CLIENT" "$DB_SERVER"; do
  dropdb --if-exists "$db" >/dev/null 2>&1
  createdb "$db" || fail "createdb $db"
  psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION calo_recon" >/dev/null || fail "CREATE EXTENSION in $db"
done

# client side: the samples tree (two logs, a .DS_Store and answer-key.json)
"$LOADER" --dbname "$DB_CLIENT" test/data/samples >"$OUT/first.out" 2>"$OUT/first.err"
st=$?
[ $st -eq 0 ] || { cat "$OUT/first.err"; fail "first load exited $st"; }
cat "$OUT/first.out"
grep -q '^files: 2 loaded, 0 unchanged (same content loaded before), 0 skipped as already loaded, 2 skipped as not logs, 0 skipped for their names$' "$OUT/first.out" \
  || fail "unexpected file summary"
grep -q '^events: 130, transactions: 14, duplicates: 1, conflicts: 0, balance_errors: 6, rejections: 1, quarantined: 0, repeated: 0$' "$OUT/first.out" \
  || fail "unexpected counts"
grep -q 'skipped balance-sync-logs/a3fb6cdb-0000-4000-8000-000000000000/.DS_Store: not a log' "$OUT/first.err" \
  || fail "the .DS_Store was not reported"

# server side: the same tree through ingest_file
psql -qAtX -v ON_ERROR_STOP=1 -d "$DB_SERVER" \
  -c "SELECT events, transactions, duplicates, balance_errors, rejections FROM calo_recon.ingest_file('samples/balance-sync-logs')" \
  >"$OUT/server.out" || fail "ingest_file"
[ "$(cat "$OUT/server.out")" = "130|14|1|6|1" ] || fail "server counts $(cat "$OUT/server.out")"

# the same rows on both sides (source names differ by the root: compare the rest)
snapshot() {
  psql -qAtX -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT 'txn', txn_id, user_id, txn_type, source, action, currency, amount, vat, old_balance,
       new_balance, payment_balance, update_payment_balance, metadata, logged_at, request_id,
       message_id, regexp_replace(source_file, '^samples/', '')
FROM calo_recon.transactions ORDER BY txn_id;
SELECT 'err', user_id, subscription_balance, payment_balance, logged_at, request_id, message_id, txn_id
FROM calo_recon.balance_errors ORDER BY logged_at, user_id;
SELECT 'rej', txn_id, user_id, current_balance, logged_at, request_id
FROM calo_recon.negative_balance_rejections ORDER BY logged_at;
SELECT 'evt', regexp_replace(source_file, '^samples/', ''), event_no, logged_at, request_id, message_id,
       level, kind, body, md5(raw)
FROM calo_recon.log_events ORDER BY 2, 3;
SELECT 'file', encode(digest, 'hex'), regexp_replace(file_name, '^samples/', ''), bytes, events,
       transactions, duplicates, conflicts, balance_errors, rejections, quarantined, repeated
FROM calo_recon.ingested_files ORDER BY 2;
SQL
}
snapshot "$DB_CLIENT" >"$OUT/client.rows" || fail "snapshot client"
snapshot "$DB_SERVER" >"$OUT/server.rows" || fail "snapshot server"
[ "$(grep -c '^evt' "$OUT/client.rows")" -eq 130 ] || fail "client has not 130 events"
diff "$OUT/client.rows" "$OUT/server.rows" >"$OUT/rows.diff" || { head -n 40 "$OUT/rows.diff"; fail "client and server rows differ"; }

# resumable: a second run skips both logs by name and changes nothing
"$LOADER" --dbname "$DB_CLIENT" --quiet test/data/samples >"$OUT/second.out" 2>"$OUT/second.err" \
  || fail "second load exited $?"
grep -q '^files: 0 loaded, 0 unchanged (same content loaded before), 2 skipped as already loaded, 2 skipped as not logs, 0 skipped for their names$' "$OUT/second.out" \
  || { cat "$OUT/second.out"; fail "second run did not skip"; }
# --recheck sends them again: the server's digest check answers "unchanged"
"$LOADER" --dbname "$DB_CLIENT" --quiet --recheck test/data/samples >"$OUT/third.out" 2>/dev/null \
  || fail "recheck exited $?"
grep -q '^files: 0 loaded, 2 unchanged' "$OUT/third.out" || { cat "$OUT/third.out"; fail "recheck"; }
snapshot "$DB_CLIENT" >"$OUT/client2.rows" || fail "snapshot client again"
cmp -s "$OUT/client.rows" "$OUT/client2.rows" || fail "a reload changed rows"

# a bad connection string: message and exit status 2
"$LOADER" --dbname "host=$OUT/no-such-socket-dir dbname=nope connect_timeout=2" test/data/samples \
  >/dev/null 2>"$OUT/conn.err"
st=$?
[ $st -ne 0 ] || fail "bad connection string exited 0"
grep -q 'could not connect to the database' "$OUT/conn.err" || { cat "$OUT/conn.err"; fail "no connection message"; }

# a damaged file stops the load with its name; no such export folder either
"$LOADER" --dbname "$DB_CLIENT" --quiet test/data/bad/walk >/dev/null 2>"$OUT/bad.err"
[ $? -eq 1 ] || fail "damaged file did not exit 1"
grep -q 'c_invalid_utf8.log: invalid UTF-8 at byte offset 100' "$OUT/bad.err" || { cat "$OUT/bad.err"; fail "no damage message"; }
"$LOADER" --dbname "$DB_CLIENT" --quiet "$OUT/does-not-exist" >/dev/null 2>"$OUT/missing.err"
[ $? -eq 1 ] || fail "missing export did not exit 1"
grep -q 'could not open' "$OUT/missing.err" || fail "no message for a missing export"

# names the server refuses as source names (a control character, bytes not
# UTF-8) are skipped and listed, escaped, as ingest_file quarantines them;
# the other files load
DB_NAMES=calo_load_names
mkdir -p "$OUT/names"
log=$(find test/data/samples -name '000000.gz' | head -n 1)
cp "$log" "$OUT/names/good.gz"
cp "$log" "$OUT/names/"$'ctl\x01name.gz'
cp "$log" "$OUT/names/"$'latin\xe9.gz'
dropdb --if-exists "$DB_NAMES" >/dev/null 2>&1
createdb "$DB_NAMES" && psql -qX -d "$DB_NAMES" -c "CREATE EXTENSION calo_recon" >/dev/null || fail "names db"
"$LOADER" --dbname "$DB_NAMES" --quiet "$OUT/names" >"$OUT/names.out" 2>"$OUT/names.err"
st=$?
[ $st -eq 0 ] || { cat "$OUT/names.err"; fail "bad names: exited $st"; }
grep -q '^files: 1 loaded, 0 unchanged (same content loaded before), 0 skipped as already loaded, 0 skipped as not logs, 2 skipped for their names$' "$OUT/names.out" \
  || { cat "$OUT/names.out"; fail "bad names: file summary"; }
grep -qF 'skipped ctl\x01name.gz: source name "ctl\x01name.gz" contains a control character' "$OUT/names.err" \
  || { cat "$OUT/names.err"; fail "bad names: no message for the control character"; }
grep -qF 'skipped latin\xe9.gz: invalid byte sequence for encoding "UTF8"' "$OUT/names.err" \
  || { cat "$OUT/names.err"; fail "bad names: no message for the Latin-1 name"; }
! grep -q $'\x01' "$OUT/names.err" || fail "bad names: a raw control character reached the terminal"
[ "$(psql -AtX -d "$DB_NAMES" -c "SELECT string_agg(file_name, ',') FROM calo_recon.ingested_files")" = good.gz ] \
  || fail "bad names: stored $(psql -AtX -d "$DB_NAMES" -c 'SELECT file_name FROM calo_recon.ingested_files')"
dropdb --if-exists "$DB_NAMES" >/dev/null 2>&1

# a backfill pages nobody: --no-alerts, or --no-alerts-older-than for files
# last modified longer ago (a copy of the samples dated 2020, then today);
# reconcile() records the same findings either way (issue 11 item 1)
DB_BACKFILL=calo_load_backfill
alerts_breaks() { psql -AtX -d "$DB_BACKFILL" -c "SELECT (SELECT count(*) FROM calo_recon.alerts) || ' ' || (SELECT count(*) FROM calo_recon.balance_breaks)"; }
backfill() {  # backfill OPTION... -> "alerts breaks"
  dropdb --if-exists "$DB_BACKFILL" >/dev/null 2>&1
  createdb "$DB_BACKFILL" && psql -qX -d "$DB_BACKFILL" -c "CREATE EXTENSION calo_recon" >/dev/null || fail "backfill db"
  "$LOADER" --dbname "$DB_BACKFILL" --quiet "$@" >/dev/null 2>&1 || fail "backfill load $* exited $?"
  alerts_breaks
}
cp -r test/data/samples "$OUT/dated"
find "$OUT/dated" -type f -exec touch -d '2020-01-01 00:00' {} +
read -r paging breaks <<<"$(backfill "$OUT/dated")"
[ "$paging" -gt 0 ] && [ "$breaks" -gt 0 ] || fail "the samples raise no alert or finding ($paging $breaks)"
[ "$(backfill --no-alerts "$OUT/dated")" = "0 $breaks" ] || fail "--no-alerts: $(alerts_breaks), want 0 $breaks"
[ "$(backfill --no-alerts-older-than '1 year' "$OUT/dated")" = "0 $breaks" ] \
  || fail "--no-alerts-older-than, old files: $(alerts_breaks), want 0 $breaks"
find "$OUT/dated" -type f -exec touch {} +
[ "$(backfill --no-alerts-older-than '1 year' "$OUT/dated")" = "$paging $breaks" ] \
  || fail "--no-alerts-older-than, new files: $(alerts_breaks), want $paging $breaks"
[ "$(PGOPTIONS='-c calo_recon.alerts=off' backfill "$OUT/dated")" = "0 $breaks" ] \
  || fail "the loader dropped PGOPTIONS"
"$LOADER" --dbname "$DB_BACKFILL" --no-alerts-older-than bogus "$OUT/dated" >/dev/null 2>"$OUT/age.err"
[ $? -eq 2 ] || fail "a bad interval did not exit 2"
grep -q 'invalid input syntax for type interval' "$OUT/age.err" || { cat "$OUT/age.err"; fail "no message for a bad interval"; }
dropdb --if-exists "$DB_BACKFILL" >/dev/null 2>&1

# a SQL error names its SQLSTATE: a database without the extension
psql -qX -d "$DB_SERVER" -c "DROP EXTENSION calo_recon CASCADE" >/dev/null 2>&1
"$LOADER" --dbname "$DB_SERVER" --quiet test/data/samples >/dev/null 2>"$OUT/sql.err"
[ $? -eq 1 ] || fail "missing extension did not exit 1"
grep -q 'SQLSTATE 42P01' "$OUT/sql.err" || { cat "$OUT/sql.err"; fail "no SQLSTATE in the message"; }

echo "loader.sh: ok"
