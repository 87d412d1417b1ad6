#!/usr/bin/env bash
# The CSV load path: transactions and balance_errors
# exported with \copy ... TO ... CSV HEADER load back with \copy ... FROM into
# a fresh extension, row for row; the logs ingested afterwards are recognized
# as duplicates (nothing stored twice); a bad CSV row fails the whole COPY.
set -uo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "csv_copy.sh: FAIL: $*"; exit 1; }
SRC=calo_csv_source
DST=calo_csv_target
OUT=$(mktemp -d)
chmod 755 "$OUT"
cleanup() {
  dropdb --if-exists "$SRC" >/dev/null 2>&1
  dropdb --if-exists "$DST" >/dev/null 2>&1
  rm -rf "$OUT"
}
trap cleanup EXIT

for db in "$SRC" "$DST"; do
  dropdb --if-exists "$db" >/dev/null 2>&1
  createdb "$db" || fail "createdb $db"
  psql -qX -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION calo_recon" >/dev/null || fail "CREATE EXTENSION in $db"
done
psql -qX -v ON_ERROR_STOP=1 -d "$SRC" -c "SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs')" >/dev/null \
  || fail "ingest_file"

psql -qX -v ON_ERROR_STOP=1 -d "$SRC" <<SQL || fail "export"
\copy calo_recon.transactions TO '$OUT/transactions.csv' CSV HEADER
\copy calo_recon.balance_errors TO '$OUT/balance_errors.csv' CSV HEADER
SQL
[ "$(wc -l <"$OUT/transactions.csv")" -ge 15 ] || fail "transactions.csv too short"
head -n 1 "$OUT/transactions.csv" | grep -q '^txn_id,user_id,txn_type,source,action,currency,amount,vat,old_balance,new_balance,payment_balance,update_payment_balance,metadata,logged_at,request_id,message_id,source_file$' \
  || fail "transactions.csv header"

psql -qX -v ON_ERROR_STOP=1 -d "$DST" >/dev/null <<SQL || fail "import"
\copy calo_recon.transactions FROM '$OUT/transactions.csv' CSV HEADER
\copy calo_recon.balance_errors FROM '$OUT/balance_errors.csv' CSV HEADER
-- explicit error_id values: move the identity past them before ingesting more
SELECT pg_catalog.setval(pg_catalog.pg_get_serial_sequence('calo_recon.balance_errors', 'error_id'),
                         (SELECT max(error_id) FROM calo_recon.balance_errors));
SQL

rows() {
  psql -qAtX -v ON_ERROR_STOP=1 -d "$1" <<'SQL'
SELECT t.*::text FROM calo_recon.transactions t ORDER BY txn_id;
SELECT b.*::text FROM calo_recon.balance_errors b ORDER BY error_id;
SQL
}
rows "$SRC" >"$OUT/src.rows" || fail "rows of $SRC"
rows "$DST" >"$OUT/dst.rows" || fail "rows of $DST"
[ "$(wc -l <"$OUT/src.rows")" -eq 20 ] || fail "expected 14 transactions + 6 errors, got $(wc -l <"$OUT/src.rows") rows"
diff "$OUT/src.rows" "$OUT/dst.rows" || fail "CSV round trip changed rows"

# the logs after the CSV: every transaction is a duplicate delivery, every
# balance error a repeat; nothing is stored twice
got=$(psql -qAtX -v ON_ERROR_STOP=1 -d "$DST" -c \
  "SELECT events, transactions, duplicates, balance_errors, repeated, rejections FROM calo_recon.ingest_file('samples/balance-sync-logs')") \
  || fail "ingest after CSV"
[ "$got" = "130|0|15|0|6|1" ] || fail "ingest after CSV gave $got"
[ "$(psql -qAtX -d "$DST" -c 'SELECT count(*) FROM calo_recon.transactions')" = 14 ] || fail "transactions doubled"
[ "$(psql -qAtX -d "$DST" -c 'SELECT count(*) FROM calo_recon.balance_errors')" = 6 ] || fail "balance errors doubled"

# a CSV with one bad row loads nothing (23514: txn_type must be CREDIT or DEBIT)
sed '0,/,DEBIT,/s//,REFUND,/' "$OUT/transactions.csv" >"$OUT/bad.csv"
grep -q ',REFUND,' "$OUT/bad.csv" || fail "no row to damage"
psql -qX -d "$DST" -c "TRUNCATE calo_recon.transactions" >/dev/null || fail "truncate"
psql -qX -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$DST" -c "\\copy calo_recon.transactions FROM '$OUT/bad.csv' CSV HEADER" \
  >/dev/null 2>"$OUT/bad.err" && fail "a bad CSV row loaded"
grep -q '23514' "$OUT/bad.err" || { cat "$OUT/bad.err"; fail "no check violation reported"; }
[ "$(psql -qAtX -d "$DST" -c 'SELECT count(*) FROM calo_recon.transactions')" = 0 ] || fail "a failed COPY left rows"

echo "csv_copy.sh: ok"
