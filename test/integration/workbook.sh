#!/usr/bin/env bash
# export_workbook read back with openpyxl: the Summary sheet first with its
# three native charts, one sheet per report with headers and row counts equal
# to the views (headings in words, json columns left to the CSV), typed cells
# (money in its currency's format, times as UTC dates, booleans TRUE/FALSE),
# anomalies by score, frozen header row, autofilter, landscape one page wide
# (or at 70 % on pages across) with the header row repeated, the split
# of a long report over sheets; then the path rules that need a shell:
# symbolic links out of the export folder and foreign symlinked files.
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

# a third wallet whose report needs two sheets at 2 rows per sheet
q <<'SQL'
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat,
     old_balance, new_balance, logged_at)
VALUES ('01HWORKBOOK000000000000003', 'workbook-user-3', 'CREDIT', 'PAYMENT', 'TOPUP', 'SAR',
        100.004, 0, 0, 100.004, '2024-02-04 00:00:00+00');
SQL
q -c "SELECT calo_recon.train_model(seed => 7)" >/dev/null 2>&1 || true

# expected report sheets: the views that exist, with their columns and row counts
expected=$(q <<'SQL'
SELECT json_agg(json_build_object('sheet', s.sheet, 'view', s.view, 'columns', (
           SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
           WHERE a.attrelid = format('calo_recon.%I', s.view)::regclass AND a.attnum > 0 AND NOT a.attisdropped
             AND a.atttypid NOT IN ('json'::regtype, 'jsonb'::regtype)),
         'rows', (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM calo_recon.%I', s.view), false, true, '')))[1]::text::int)
       ORDER BY s.ord)
FROM (VALUES (1, 'Daily Summary', 'daily_summary'), (2, 'All Transactions', 'transactions'),
             (3, 'Overdrafts', 'overdrafts'), (4, 'Overdraft Episodes', 'overdraft_episodes'),
             (5, 'Anomalies', 'anomalies'), (6, 'Discrepancies', 'discrepancies'),
             (7, 'Balance Breaks', 'balance_breaks'), (8, 'Precision Drift', 'precision_drift'),
             (9, 'User Summary', 'user_summary')) s(ord, sheet, view)
WHERE to_regclass(format('calo_recon.%I', s.view)) IS NOT NULL
SQL
)
rows=$(q -c "SELECT calo_recon.export_workbook('workbook/reports.xlsx')")
book="$CR_ROOT/export/workbook/reports.xlsx"
[ -f "$book" ] || fail "no workbook at $book"
# the same data at 2 rows per sheet: every longer report continues on "<sheet> (2)", ...
split_rows=$(q -c "SET calo_recon.workbook_sheet_rows = 2" -c "SELECT calo_recon.export_workbook('workbook/split.xlsx')")
split="$CR_ROOT/export/workbook/split.xlsx"
anomaly_order=$(q -c "SELECT json_agg(txn_id ORDER BY score DESC NULLS LAST, txn_id) FROM calo_recon.anomalies")
[ "$(stat -c %a "$book")" = 600 ] || fail "workbook mode $(stat -c %a "$book"), not 600"
# calo_recon.export_group: the files go to that group, readable by it (0640)
q -c "SET calo_recon.export_group = 'postgres'" -c "SELECT count(*) FROM calo_recon.export_reports('workbook/group')" >/dev/null
for f in "$CR_ROOT"/export/workbook/group/*.csv; do
  [ "$(stat -c '%a %G' "$f")" = "640 postgres" ] || fail "$f is $(stat -c '%a %G' "$f") with export_group set"
done
# a group the server's user does not belong to: 42501, nothing published
other=$(getent group | cut -d: -f1,4 | awk -F: '$1 != "postgres" && $2 !~ /(^|,)postgres(,|$)/ {print $1; exit}')
state=$(q -c "SET calo_recon.export_group = '$other'" -c "DO \$\$ BEGIN PERFORM calo_recon.export_reports('workbook/other'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'STATE %', SQLSTATE; END \$\$" 2>&1 || true)
grep -q "STATE 42501" <<<"$state" || fail "a foreign export_group ($other) was not refused: $state"
[ -z "$(ls "$CR_ROOT/export/workbook/other" 2>/dev/null)" ] || fail "files published despite the refused group"

/usr/bin/python3 - "$book" "$expected" "$rows" "$split" "$split_rows" "$anomaly_order" <<'PY' || fail "read-back check failed"
import datetime, json, math, re, sys, zipfile
import openpyxl

path, expected, rows_written = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
split_path, split_written, anomaly_order = sys.argv[4], int(sys.argv[5]), json.loads(sys.argv[6])
wb = openpyxl.load_workbook(path)

def heading(name):
    """A column's heading: its name in words, "ID" in capitals, the first letter too."""
    words = ["ID" if w == "id" else w for w in name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]

for e in expected:
    e["headings"] = [heading(c) for c in e["columns"]]
assert wb.sheetnames == ["Summary"] + [e["sheet"] for e in expected] + ["Chart Data"], wb.sheetnames
assert wb.active.title == "Summary", wb.active.title
total = 0
for e in expected:
    ws = wb[e["sheet"]]
    header = [c.value for c in next(ws.iter_rows(min_row=1, max_row=1))]
    assert header == e["headings"], (e["sheet"], header, e["headings"])
    data_rows = ws.max_row - 1
    assert data_rows == e["rows"], (e["sheet"], data_rows, e["rows"])
    total += data_rows
    assert ws.freeze_panes == "A2", (e["sheet"], ws.freeze_panes)
    assert ws.auto_filter.ref, e["sheet"]
    # printed landscape, one page wide, the header row on every page; a
    # sheet too wide for that at 70 % prints at 70 % on pages across, its
    # first column repeated
    assert ws.page_setup.orientation == "landscape", (e["sheet"], ws.page_setup.orientation)
    fit = ws.sheet_properties.pageSetUpPr is not None and ws.sheet_properties.pageSetUpPr.fitToPage
    if fit:
        # fitToWidth absent is OOXML's default of 1 page
        assert ws.page_setup.fitToWidth in (None, 1) and ws.page_setup.fitToHeight == 0, e["sheet"]
    else:
        assert ws.page_setup.scale == 70 and ws.page_setup.pageOrder == "overThenDown", \
            (e["sheet"], ws.page_setup.scale, ws.page_setup.pageOrder)
        assert ws.print_title_cols in ("A:A", "$A:$A"), (e["sheet"], ws.print_title_cols)
    assert ws.print_title_rows in ("1:1", "$1:$1"), (e["sheet"], ws.print_title_rows)
assert total == rows_written, (total, rows_written)

def rows_of(sheet):
    ws = wb[sheet]
    cols = {c.value.lower().replace(" ", "_"): i for i, c in enumerate(next(ws.iter_rows(min_row=1, max_row=1)))}
    return ws, cols, list(ws.iter_rows(min_row=2))

ws, cols, data = rows_of("All Transactions")
found = [r for r in data if r[cols["txn_id"]].value == "01HWORKBOOK000000000000001"]
assert found, "row 1 missing"
found = found[0]
assert found[cols["new_balance"]].value == -40 and isinstance(found[cols["new_balance"]].value, (int, float))
assert found[cols["amount"]].value == 40
# times are dates in UTC, shown with their zone
logged = found[cols["logged_at"]]
assert logged.value == datetime.datetime(2024, 2, 3, 4, 5, 6), logged.value
assert "UTC" in logged.number_format, logged.number_format
# money in its currency's format: BHD has 3 decimals, SAR 2
assert found[cols["amount"]].number_format == '#,##0.000 "BHD"_)', found[cols["amount"]].number_format
third = [r for r in data if r[cols["txn_id"]].value == "01HWORKBOOK000000000000003"][0]
assert third[cols["amount"]].number_format == '#,##0.00 "SAR"_)', third[cols["amount"]].number_format
# a cell written as a string is never a formula, so text that a spreadsheet
# could take for one is kept exactly as logged (no CSV apostrophe)
assert found[cols["source"]].value == "=1+1" and found[cols["source"]].data_type != "f"
assert found[cols["action"]].value == "TEST"
second = [r for r in data if r[cols["txn_id"]].value == "01HWORKBOOK000000000000002"]
assert second and second[0][cols["source"]].value == " \uff1d1+1", second
assert second[0][cols["action"]].value == "\n|calc", second
for sheet in wb.sheetnames:
    for r in wb[sheet].iter_rows():
        for c in r:
            assert c.data_type != "f", (sheet, c)
# booleans are TRUE/FALSE cells
ws, cols, data = rows_of("User Summary")
assert any(r[cols["reconciles"]].value is True for r in data), [r[cols["reconciles"]].value for r in data]
assert all(r[cols["reconciles"]].data_type == "b" for r in data if r[cols["reconciles"]].value is not None)
# money of views is rounded: the logged 100.004 SAR shows as 100.00
row3 = [r for r in data if r[cols["user_id"]].value == "workbook-user-3"][0]
assert row3[cols["current_balance"]].value == 100.0, row3[cols["current_balance"]].value
# anomalies by score, highest first, with their sentence and not the attribution
ws, cols, data = rows_of("Anomalies")
assert "explanation" in cols and "attribution" not in cols, cols
assert [r[cols["txn_id"]].value for r in data] == anomaly_order, ([r[cols["txn_id"]].value for r in data], anomaly_order)
ws, cols, data = rows_of("Overdrafts")
assert -40 in [r[cols["new_balance"]].value for r in data]

# the summary: period, as-of, figures per currency, breaks by kind, the sheets
summary = [[c.value for c in r] for r in wb["Summary"].iter_rows()]
flat = [v for r in summary for v in r if v is not None]
for text in ("Balance reports: Summary", "Period from", "Period to (excluded)", "As of (last refresh)",
             "Figures per currency", "Breaks by kind", "Sheets", "BHD", "SAR"):
    assert text in flat, (text, flat[:40])
listed = {r[0]: r[1] for r in summary if r and r[0] in [e["view"] for e in expected]}
assert listed == {e["view"]: e["rows"] for e in expected}, listed

# three native charts on the summary, drawn from the Chart Data sheet
with zipfile.ZipFile(path) as z:
    charts = sorted(n for n in z.namelist() if re.match(r"xl/charts/chart\d+\.xml$", n))
    assert len(charts) == 3, charts
    xml = "".join(z.read(n).decode() for n in charts)
    for title in ("Wallet liability per currency", "Breaks per day by kind", "Anomaly scores"):
        assert title in xml, title
    assert "'Chart Data'!" in xml
    assert "<c:lineChart>" in xml and "<c:barChart>" in xml
    drawing_rels = z.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    assert "drawing" in drawing_rels, drawing_rels

# split: every report longer than 2 rows continues on "<sheet> (2)", ... with its header
sp = openpyxl.load_workbook(split_path)
assert split_written == rows_written, (split_written, rows_written)
for e in expected:
    parts = [n for n in sp.sheetnames if n == e["sheet"] or n.startswith(e["sheet"] + " (")]
    assert len(parts) == max(1, math.ceil(e["rows"] / 2)), (e["sheet"], parts, e["rows"])
    got = 0
    for n in parts:
        ws = sp[n]
        assert [c.value for c in next(ws.iter_rows(min_row=1, max_row=1))] == e["headings"], n
        assert ws.max_row - 1 <= 2, (n, ws.max_row)
        got += ws.max_row - 1
    assert got == e["rows"], (e["sheet"], got, e["rows"])
print("workbook: %d report sheets, %d rows read back; split into %d sheets" % (len(expected), total, len(sp.sheetnames)))
PY

# the Summary's money over a period: the exact sum of the days rounded once
# (four days of 10.0049 QAR credit 40.02, not 4 x 10.00), and a figure out of
# the exact range an empty cell, never 0 (JOD: credits, VAT, liability; the
# Chart Data's JOD liability too); in a database of its own
FIG_DB=${DB}_figures
dropdb --if-exists "$FIG_DB" >/dev/null 2>&1
createdb "$FIG_DB"
psql -X -q -v ON_ERROR_STOP=1 -At -d "$FIG_DB" >/dev/null <<'SQL'
SET client_min_messages = error;
CREATE EXTENSION calo_recon;
SET calo_recon.alerts = off;
INSERT INTO calo_recon.transactions (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
    ('r1', 'rnd', 'CREDIT', 'QAR', 10.0049, 0, 0, 10.0049, '2024-02-01 10:00Z'),
    ('r2', 'rnd', 'CREDIT', 'QAR', 10.0049, 0, 10.0049, 20.0098, '2024-02-02 10:00Z'),
    ('r3', 'rnd', 'CREDIT', 'QAR', 10.0049, 0, 20.0098, 30.0147, '2024-02-03 10:00Z'),
    ('r4', 'rnd', 'CREDIT', 'QAR', 10.0049, 0, 30.0147, 40.0196, '2024-02-04 10:00Z'),
    ('n1', 'normj', 'CREDIT', 'JOD', 50, 0, 0, 50, '2024-04-10 11:00Z'),
    ('p1', 'precu', 'CREDIT', 'JOD', 1.0000000000000000001, 0, 0, 1.0000000000000000001, '2024-04-10 10:00Z');
SELECT count(*) FROM calo_recon.reconcile();
SELECT calo_recon.export_workbook('workbook/figures.xlsx');
SQL
dropdb --if-exists "$FIG_DB" >/dev/null 2>&1
/usr/bin/python3 - "$CR_ROOT/export/workbook/figures.xlsx" <<'PY' || fail "Summary figures check failed"
import sys
import openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
rows = [[c.value for c in r] for r in wb["Summary"].iter_rows()]
head = next(r for r in rows if r and r[0] == "Currency")
fig = {r[0]: dict(zip(head, r)) for r in rows if r and r[0] in ("QAR", "JOD")}
assert fig["QAR"]["Credits"] == 40.02, fig["QAR"]
assert fig["QAR"]["Wallet liability (closing)"] == 40.02, fig["QAR"]
assert fig["JOD"]["Credits"] is None and fig["JOD"]["VAT"] is None, fig["JOD"]
assert fig["JOD"]["Wallet liability (closing)"] is None, fig["JOD"]
assert fig["JOD"]["Debits"] == 0 and fig["JOD"]["Transactions"] == 2, fig["JOD"]
data = [[c.value for c in r] for r in wb["Chart Data"].iter_rows()]
col = data[0].index("Wallet liability JOD")
assert [r[col] for r in data[1:] if r[0] is not None and r[0].month == 4] == [None], data
print("workbook: Summary figures rounded once, out of range empty")
PY

# a symbolic link leading out of the export directory is refused (42501)
outside=$(mktemp -d /tmp/calo_outside.XXXXXX)
chown postgres "$outside" 2>/dev/null || true
ln -sfn "$outside" "$CR_ROOT/export/escape"
trap 'rm -rf "$outside" "$CR_ROOT/export/escape"; dropdb --if-exists "$DB" >/dev/null 2>&1 || true' EXIT
state=$(q -c "DO \$\$ BEGIN PERFORM calo_recon.export_reports('escape/sub'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'STATE %', SQLSTATE; END \$\$" 2>&1 || true)
grep -q "STATE 42501" <<<"$state" || fail "symlinked folder not refused: $state"
[ -z "$(ls -A "$outside")" ] || fail "something was written outside the export folder"
state=$(q -c "DO \$\$ BEGIN PERFORM calo_recon.export_workbook('escape/book.xlsx'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'STATE %', SQLSTATE; END \$\$" 2>&1 || true)
grep -q "STATE 42501" <<<"$state" || fail "symlinked workbook folder not refused: $state"

# a symbolic link in place of a report file is never replaced (58P02)
mkdir -p "$CR_ROOT/export/links"
chown postgres "$CR_ROOT/export/links" 2>/dev/null || true
ln -sfn "$outside/target.csv" "$CR_ROOT/export/links/transactions.csv"
state=$(q -c "DO \$\$ BEGIN PERFORM calo_recon.export_reports('links'); EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'STATE %', SQLSTATE; END \$\$" 2>&1 || true)
grep -q "STATE 58P02" <<<"$state" || fail "symlinked report file not refused: $state"
[ ! -e "$outside/target.csv" ] || fail "wrote through a symlink"
ls -A "$CR_ROOT/export/links" | grep -q '\.tmp$' && fail "temporary file left behind"
rm -rf "$CR_ROOT/export/links"
echo "workbook: ok"
