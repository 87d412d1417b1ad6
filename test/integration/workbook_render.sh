#!/usr/bin/env bash
# The workbook as people see it: LibreOffice (Debian's headless Calc) opens
# export_workbook's file and converts it to PDF; the first page is the
# Summary (its text checked with pdftotext: period, as-of time, figures per
# currency, breaks by kind, the chart titles) and poppler renders it to an
# image in which the charts' coloured series are drawn.  The picture is kept
# in $CR_ROOT/render/ (RENDER_OUT=folder copies it there too) to look at.
set -euo pipefail
DB=calo_workbook_render
fail() { echo "workbook_render: $*" >&2; exit 1; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }
for tool in soffice pdftotext pdftoppm; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
WORK=$(mktemp -d /tmp/calo_render.XXXXXX)
trap 'rm -rf "$WORK"; dropdb --if-exists "$DB" >/dev/null 2>&1 || true' EXIT
q -c "CREATE EXTENSION calo_recon"
q -c "SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs')" >/dev/null
q -c "SELECT * FROM calo_recon.reconcile()" >/dev/null
q -c "SELECT calo_recon.train_model(seed => 42)" >/dev/null
q -c "SELECT status FROM calo_recon.refresh()" | grep -qx succeeded || fail "refresh did not succeed"
q -c "SELECT calo_recon.export_workbook('render/book.xlsx', '2023-12-01 00:00+00', '2024-03-01 00:00+00')" >/dev/null
cp "$CR_ROOT/export/render/book.xlsx" "$WORK/"

# the figures the first page must show, from the views
liability=$(q -c "SELECT to_char(wallet_liability, 'FM999,999,990.000') FROM calo_recon.daily_summary
                  WHERE currency = 'KWD' AND day < '2024-03-01' ORDER BY day DESC LIMIT 1")
breaks=$(q -c "SELECT count(*) FROM calo_recon.balance_breaks WHERE break_kind = 'arithmetic'
               AND logged_at >= '2023-12-01 00:00+00' AND logged_at < '2024-03-01 00:00+00'")
as_of=$(q -c "SELECT to_char(as_of AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM calo_recon.as_of")

# a private LibreOffice profile: no state shared with anyone, no first-run dialogs
( cd "$WORK" && HOME="$WORK" timeout 180 soffice --headless --norestore \
    "-env:UserInstallation=file://$WORK/profile" --convert-to pdf --outdir "$WORK" book.xlsx >/dev/null 2>&1 ) \
  || fail "LibreOffice could not convert the workbook"
[ -s "$WORK/book.pdf" ] || fail "no PDF"
pdftotext -f 1 -l 1 -layout "$WORK/book.pdf" "$WORK/page1.txt"
for text in "Balance reports: Summary" "Period from" "2023-12-01 00:00:00 UTC" "2024-03-01 00:00:00 UTC" \
            "As of (last refresh)" "$as_of UTC" "Figures per currency" "Breaks by kind" \
            "$liability KWD" "Wallet liability per currency" "Breaks per day by kind" "Anomaly scores"; do
  grep -qF "$text" "$WORK/page1.txt" || { cat "$WORK/page1.txt" >&2; fail "page 1 does not show \"$text\""; }
done
grep -E "^ *arithmetic +$breaks " "$WORK/page1.txt" >/dev/null || fail "page 1 does not show $breaks arithmetic break(s)"
# the second page is the first report, not more of the summary
pdftotext -f 2 -l 2 -layout "$WORK/book.pdf" - | grep -q "wallet_liability" || fail "page 2 is not the Daily Summary sheet"

# the picture: the charts' series are drawn in colour (text and grid are grey)
mkdir -p "$CR_ROOT/render"
pdftoppm -f 1 -l 1 -r 80 -png "$WORK/book.pdf" "$CR_ROOT/render/workbook-summary"
pdftoppm -f 1 -l 1 -r 72 "$WORK/book.pdf" "$WORK/small"
/usr/bin/python3 - "$WORK"/small*.ppm <<'PY' || fail "no chart drawn on the summary page"
import sys
data = open(sys.argv[1], "rb").read()
# binary PPM: P6 <width> <height> <max>\n<rgb...>
fields, pos = [], 2
while len(fields) < 3:
    while data[pos:pos + 1].isspace():
        pos += 1
    end = pos
    while not data[end:end + 1].isspace():
        end += 1
    fields.append(int(data[pos:end]))
    pos = end
width, height, _ = fields
pixels = data[pos + 1:]
coloured = sum(1 for i in range(0, len(pixels), 3)
               if max(pixels[i:i + 3]) - min(pixels[i:i + 3]) > 60)
print("workbook_render: %dx%d page, %d coloured pixels" % (width, height, coloured))
assert coloured > 200, coloured
PY
if [ -n "${RENDER_OUT:-}" ]; then mkdir -p "$RENDER_OUT"; cp "$CR_ROOT"/render/workbook-summary*.png "$RENDER_OUT/"; fi
echo "workbook_render: ok"
