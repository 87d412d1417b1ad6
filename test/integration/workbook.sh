#!/usr/bin/env bash
# export_workbook read back with openpyxl: sheet names, headers, row counts
# equal to the views, typed cells (the -40 overdraft is a number, times are
# dates), frozen header row and autofilter; then the path rules that need a
# shell: symbolic links out of the export folder and foreign symlinked files.
set -euo pipefail
DB=calo_workbook
fail() { echo "workbook: $*" >&2; exit 1; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1 || true' EXIT
q -c "CREATE EXTENSION calo_recon"
if q -c "SELECT to_regprocedure('calo_recon.ingest_file(text)') IS NOT NULL" | grep -qx t; then
  q -c "SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs')" >/dev/null
fi
q <<'SQL'
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat,
     old_balance, new_balance, logged_at)
VALUES ('01HWORKBOOK000000000000001', 'workbook-user', 'DEBIT', '=1+1', 'TEST', 'BHD',
        40, 0, 0, -40, '2024-02-03 04:05:06+00'),
       ('01HWORKBOOK000000000000002', 'workbook-user-2', 'CREDIT', ' ＝1+1', E'\n|calc', 'BHD',
        1, 0, 0, 1, '2024-02-03 04:05:07+00');
SQL
if q -c "SELECT to_regprocedure('calo_recon.reconcile(text[])') IS NOT NULL" | grep -qx t; then
  q -c "SELECT calo_recon.reconcile(ARRAY['workbook-user'])" >/dev/null
fi

rows=$(q -c "SELECT calo_recon.export_workbook('workbook/reports.xlsx')")
book="$CR_ROOT/export/workbook/reports.xlsx"
[ -f "$book" ] || fail "no workbook at $book"

# expected sheets: the views that exist, with their columns and row counts
expected=$(q <<'SQL'
SELECT json_agg(json_build_object('sheet', s.sheet, 'columns', (
           SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
           WHERE a.attrelid = format('calo_recon.%I', s.view)::regclass AND a.attnum > 0 AND NOT a.attisdropped),
         'rows', (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM calo_recon.%I', s.view), false, true, '')))[1]::text::int)
       ORDER BY s.ord)
FROM (VALUES (1, 'All Transactions', 'transactions'), (2, 'Overdrafts', 'overdrafts'),
             (3, 'Anomalies', 'anomalies'), (4, 'Discrepancies', 'discrepancies'),
             (5, 'Balance Breaks', 'balance_breaks'), (6, 'User Summary', 'user_summary')) s(ord, sheet, view)
WHERE to_regclass(format('calo_recon.%I', s.view)) IS NOT NULL
SQL
)

/usr/bin/python3 - "$book" "$expected" "$rows" <<'PY' || fail "read-back check failed"
import datetime, json, sys
import openpyxl

path, expected, rows_written = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
wb = openpyxl.load_workbook(path)
assert wb.sheetnames == [e["sheet"] for e in expected], (wb.sheetnames, expected)
total = 0
for e in expected:
    ws = wb[e["sheet"]]
    header = [c.value for c in next(ws.iter_rows(min_row=1, max_row=1))]
    assert header == e["columns"], (e["sheet"], header, e["columns"])
    data_rows = ws.max_row - 1
    assert data_rows == e["rows"], (e["sheet"], data_rows, e["rows"])
    total += data_rows
    assert ws.freeze_panes == "A2", (e["sheet"], ws.freeze_panes)
    assert ws.auto_filter.ref, e["sheet"]
assert total == rows_written, (total, rows_written)

ws = wb["All Transactions"]
cols = {c.value: i for i, c in enumerate(next(ws.iter_rows(min_row=1, max_row=1)))}
found = None
for row in ws.iter_rows(min_row=2, values_only=True):
    if row[cols["txn_id"]] == "01HWORKBOOK000000000000001":
        found = row
assert found is not None
assert found[cols["new_balance"]] == -40 and isinstance(found[cols["new_balance"]], (int, float)), found
assert found[cols["amount"]] == 40
assert isinstance(found[cols["logged_at"]], datetime.datetime), found[cols["logged_at"]]
# a cell written as a string is never a formula, so text that a spreadsheet
# could take for one is kept exactly as logged (no CSV apostrophe)
assert found[cols["source"]] == "=1+1" and ws.cell(row=2, column=1).data_type != "f"
assert found[cols["action"]] == "TEST", found
second = [row for row in ws.iter_rows(min_row=2, values_only=True)
          if row[cols["txn_id"]] == "01HWORKBOOK000000000000002"]
assert second and second[0][cols["source"]] == " \uff1d1+1", second
assert second[0][cols["action"]] == "\n|calc", second
for r in ws.iter_rows(min_row=2):
    for c in r:
        assert c.data_type != "f", c
if "Overdrafts" in wb.sheetnames:
    ov = wb["Overdrafts"]
    oh = [c.value for c in next(ov.iter_rows(min_row=1, max_row=1))]
    numbers = [v for row in ov.iter_rows(min_row=2, values_only=True) for v in row
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert -40 in numbers, (oh, numbers[:20])
print("workbook: %d sheets, %d rows read back" % (len(expected), total))
PY

# a symbolic link leading out of the export directory is refused (42501)
outside=$(mktemp -d /tmp/calo_outside.XXXXXX)
chown postgres "$outside" 2>/dev/null || true
ln -sfn "$outside" "$CR_ROOT/export/escape"
trap 'rm -rf "$outside" "$CR_ROOT/export/escape"; dropdb --if-exists "$DB" >/dev/null 2>&1 || true' EXIT
state=$(q -c "DO \$\$ BEGIN PERFORM calo_recon.export_reports('escape/sub'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'STATE %', SQLSTATE; END \$\$" 2>&1 || true)
echo "$state" | grep -q "STATE 42501" || fail "symlinked folder not refused: $state"
[ -z "$(ls -A "$outside")" ] || fail "something was written outside the export folder"
state=$(q -c "DO \$\$ BEGIN PERFORM calo_recon.export_workbook('escape/book.xlsx'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'STATE %', SQLSTATE; END \$\$" 2>&1 || true)
echo "$state" | grep -q "STATE 42501" || fail "symlinked workbook folder not refused: $state"

# a symbolic link in place of a report file is never replaced (58P02)
mkdir -p "$CR_ROOT/export/links"
chown postgres "$CR_ROOT/export/links" 2>/dev/null || true
ln -sfn "$outside/target.csv" "$CR_ROOT/export/links/transactions.csv"
state=$(q -c "DO \$\$ BEGIN PERFORM calo_recon.export_reports('links'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'STATE %', SQLSTATE; END \$\$" 2>&1 || true)
echo "$state" | grep -q "STATE 58P02" || fail "symlinked report file not refused: $state"
[ ! -e "$outside/target.csv" ] || fail "wrote through a symlink"
ls -A "$CR_ROOT/export/links" | grep -q '\.tmp$' && fail "temporary file left behind"
rm -rf "$CR_ROOT/export/links"
echo "workbook: ok"
