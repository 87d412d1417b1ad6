#!/usr/bin/env bash
# Issue 8 item 6: the reconciliation and the alerts in a database whose
# default collation is ICU (en-US), where text order is not byte order:
# 'B2' < 'a1' bytewise, 'a1' < 'B2' in en-US. Chain order compares txn_id
# bytewise everywhere (src/core/walk.c), so
#   1. a chain inserted in chain order raises no chain alert and reconcile()
#      finds no break (the trigger used to order txn_id by the database
#      collation and alerted against the wrong predecessor);
#   2. the views that follow chain order (balance_breaks.first_break,
#      user_summary.current_balance, overdraft_episodes) agree with it;
#   3. pgTAP's recon.sql and pg_regress's 40_recon, 41_recon_decimal and
#      42_recon_samples (the sample export, when imported) and the isolation
#      spec alert_chain run there too.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=calo_icu
dropdb --if-exists "$DB" >/dev/null 2>&1
psql -X -q -v ON_ERROR_STOP=1 -d postgres \
  -c "CREATE DATABASE $DB TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1 || true' EXIT
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
fail=0
expect() {  # expect NAME EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then echo "icu: ok   $1"
  else echo "icu: FAIL $1: expected [$2], got [$3]"; fail=1; fi
}

q -c "CREATE EXTENSION calo_recon"
expect "the database collation orders a1 before B2" t "$(q -c "SELECT 'a1' < 'B2'")"

# Chain in byte order: X0 (0 -> 10), then at one instant B2 (10 -> 7) and
# a1 (7 -> 4), inserted one by one in chain order; then a tie whose ids
# differ in punctuation only ('p-2' < 'p.1' bytewise, not in en-US).
q <<'SQL'
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('X0', 'icu-user', 'CREDIT', 'SAR', 10, 0, 0, 10, '2024-06-01 00:00+00');
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('B2', 'icu-user', 'DEBIT', 'SAR', 3, 0, 10, 7, '2024-06-01 00:01+00');
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('a1', 'icu-user', 'DEBIT', 'SAR', 3, 0, 7, 4, '2024-06-01 00:01+00');
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('p-2', 'icu-user', 'DEBIT', 'SAR', 1, 0, 4, 3, '2024-06-01 00:02+00');
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('p.1', 'icu-user', 'DEBIT', 'SAR', 4, 0, 3, -1, '2024-06-01 00:02+00');
SQL
expect "reconcile() finds no break" "0|0" \
  "$(q -c "SELECT arithmetic_breaks, chain_breaks FROM calo_recon.reconcile(ARRAY['icu-user'])")"
expect "no chain or arithmetic alert (as reconcile)" "" \
  "$(q -c "SELECT string_agg(txn_id || ':' || alert_kind, ',' ORDER BY alert_id) FROM calo_recon.alerts WHERE alert_kind IN ('chain', 'arithmetic')")"
expect "the overdraft alert of p.1" "p.1:overdraft" \
  "$(q -c "SELECT string_agg(txn_id || ':' || alert_kind, ',' ORDER BY alert_id) FROM calo_recon.alerts WHERE alert_kind = 'overdraft'")"
expect "current_balance is the last row's in chain order (p.1)" "-1.00" \
  "$(q -c "SELECT current_balance FROM calo_recon.user_summary WHERE user_id = 'icu-user'")"
expect "one overdraft episode opened by p.1" "p.1|p.1|1" \
  "$(q -c "SELECT first_txn_id, last_txn_id, transactions FROM calo_recon.overdraft_episodes WHERE user_id = 'icu-user'")"

# A real break among ties: the first break in chain order is the bytewise first.
q <<'SQL'
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
VALUES ('Z9', 'icu-breaks', 'DEBIT', 'SAR', 1, 0, 50, 40, '2024-06-02 00:00+00'),
       ('b0', 'icu-breaks', 'DEBIT', 'SAR', 1, 0, 40, 30, '2024-06-02 00:00+00');
SQL
q -c "SELECT calo_recon.reconcile(ARRAY['icu-breaks'])" >/dev/null
expect "first_break is Z9 (bytewise first), in findings and balance_breaks" "Z9|Z9" \
  "$(q -c "SELECT (SELECT txn_id FROM calo_recon.reconciliation_findings WHERE user_id = 'icu-breaks' AND first_break),
                 (SELECT txn_id FROM calo_recon.balance_breaks WHERE user_id = 'icu-breaks' AND first_break)")"
expect "alerts of the tie agree with reconcile()" \
  "$(q -c "SELECT string_agg(txn_id || ':' || finding, ',' ORDER BY txn_id COLLATE \"C\", finding) FROM calo_recon.reconciliation_findings WHERE user_id = 'icu-breaks' AND finding IN ('arithmetic', 'chain')")" \
  "$(q -c "SELECT string_agg(txn_id || ':' || alert_kind, ',' ORDER BY txn_id COLLATE \"C\", alert_kind) FROM calo_recon.alerts WHERE user_id = 'icu-breaks' AND alert_kind IN ('arithmetic', 'chain')")"
q -c "DROP EXTENSION calo_recon CASCADE"

# the suites' own reconciliation tests, in this database
q -c "CREATE EXTENSION IF NOT EXISTS pgtap"
if ! pg_prove -d "$DB" test/tap/recon.sql; then echo "icu: FAIL pgTAP recon.sql"; fail=1; fi
out=$(mktemp -d)
if ! "$(dirname "$(pg_config --pgxs)")/../test/regress/pg_regress" --use-existing --dbname="$DB" \
     --inputdir=test --outputdir="$out" 40_recon 41_recon_decimal 42_recon_samples >"$out/log" 2>&1; then
  cat "$out/log"; head -n 80 "$out/regression.diffs" 2>/dev/null; echo "icu: FAIL pg_regress 40_recon 41_recon_decimal 42_recon_samples"; fail=1
else
  echo "icu: ok   pg_regress 40_recon 41_recon_decimal 42_recon_samples"
fi
# the alert trigger's isolation spec (chain alerts under concurrent inserts)
q -c "SET client_min_messages = warning" -c "DROP EXTENSION IF EXISTS calo_recon CASCADE"
if ! "$(dirname "$(pg_config --pgxs)")/../test/isolation/pg_isolation_regress" --use-existing \
     --dbname="$DB" --inputdir=test --outputdir="$out" alert_chain >"$out/log" 2>&1; then
  cat "$out/log"; head -n 80 "$out/regression.diffs" 2>/dev/null; echo "icu: FAIL isolation alert_chain"; fail=1
else
  echo "icu: ok   isolation alert_chain"
fi
rm -rf "$out"
exit $fail
