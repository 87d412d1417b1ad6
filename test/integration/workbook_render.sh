#!/usr/bin/env bash
# The workbook as people see it: LibreOffice (Debian's headless Calc) opens
# export_workbook's file and converts it to PDF; the first page is the
# Summary (its text checked with pdftotext: period, as-of time, figures per
# currency, breaks by kind, the chart titles) and poppler renders it to an
# image in which the charts' coloured series are drawn.  Every page prints
# at a readable size (the text's height in pdftotext's boxes), the Anomalies
# pages show the explanation sentences and never the attribution json, and
# the cells read as a finance person expects: TRUE/FALSE, decimals never in
# scientific notation, numbers under right-aligned headings, wrapped rows as
# tall as their lines (no empty line).  The picture is
# kept in $CR_ROOT/render/ (RENDER_OUT=folder copies it there too) to look at.
set -euo pipefail
DB=calo_workbook_render
fail() { echo "workbook_render: $*" >&2; exit 1; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }
for tool in soffice pdftotext pdftoppm fc-match; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
WORK=$(mktemp -d /tmp/calo_render.XXXXXX)
trap 'rm -rf "$WORK"; dropdb --if-exists "$DB" >/dev/null 2>&1 || true' EXIT
# Calc lays the workbook out with Calibri's metrics only when Carlito is there
fc-match Calibri | grep -q Carlito || fail "Carlito is missing (scripts/install-deps.sh installs fonts-crosextra-carlito)"
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
pdftotext -f 2 -l 2 -layout "$WORK/book.pdf" - | grep -q "Wallet liability" || fail "page 2 is not the Daily Summary sheet"

# what the other pages must show, from the views
q -c "SELECT explanation FROM calo_recon.anomalies WHERE explanation IS NOT NULL
      AND logged_at >= '2023-12-01 00:00+00' AND logged_at < '2024-03-01 00:00+00'" > "$WORK/sentences.txt"
[ -s "$WORK/sentences.txt" ] || fail "the samples have no anomaly with an explanation to look for"
drift=$(q -c "SELECT to_char(min(abs(difference)), 'FM0.0999999999999') FROM calo_recon.precision_drift
              WHERE logged_at >= '2023-12-01 00:00+00' AND logged_at < '2024-03-01 00:00+00'")
[ -n "$drift" ] || fail "the samples have no precision drift to look for"
pdftotext -bbox "$WORK/book.pdf" "$WORK/boxes.html"
/usr/bin/python3 - "$WORK/boxes.html" "$WORK/sentences.txt" "$drift" <<'PY' || fail "the printed pages are not as a finance person reads them"
import html, re, statistics, sys
pages = []
for page in open(sys.argv[1], encoding="utf-8").read().split("<page ")[1:]:
    pages.append([(float(x0), float(y0), float(x1), float(y1), html.unescape(w)) for x0, y0, x1, y1, w in re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', page)])
ok = True
def bad(message):
    global ok
    ok = False
    print("workbook_render: " + message, file=sys.stderr)
def text(words):
    return " ".join(w[4] for w in words)

# Readable: Calc prints the 11 pt Carlito of the cells in boxes 1.3 times the
# font size; the sheets print at 70 % or more (MIN_PRINT_SCALE): 7.7 pt.
FLOOR = 1.3 * 11 * 0.69
for n, words in enumerate(pages, 1):
    height = statistics.median(w[3] - w[1] for w in words) if words else 0
    print("workbook_render: page %d prints its text %.1f pt tall" % (n, height))
    if height < FLOOR:
        bad("page %d prints its text %.1f pt tall, below the readable %.1f pt" % (n, height, FLOOR))

# Anomalies: the sentences, never the attribution (the CSV keeps that)
anomaly_pages = [w for w in pages if "Explanation" in text(w) or "Threshold" in text(w)]
if not anomaly_pages:
    bad("no Anomalies page")
squeezed = "".join(text(w) for w in anomaly_pages).replace(" ", "")
for sentence in open(sys.argv[2], encoding="utf-8").read().splitlines():
    if sentence.replace(" ", "") not in squeezed:
        bad("the Anomalies pages do not show the sentence %r" % sentence)
everything = " ".join(text(w) for w in pages)
for machine in ("total_bits", '"features"', "Attribution", "Metadata"):
    if machine in everything:
        bad("a sheet shows json (%s)" % machine)

# Booleans are TRUE/FALSE (the flags of the anomalies), decimals plain (the drift)
anomaly_text = " ".join(text(w) for w in anomaly_pages)
if "TRUE" not in anomaly_text or "FALSE" not in anomaly_text:
    bad("the Anomalies flags are not TRUE/FALSE")
if sys.argv[3] not in everything or re.search(r"\dE-\d", everything):
    bad("the drift %s is not shown as a plain decimal" % sys.argv[3])

# No text prints over other text (a wrapped cell's lines over the next row's)
for n, words in enumerate(pages, 1):
    by_top = sorted(words, key=lambda w: w[1])
    for i, a in enumerate(by_top):
        for b in by_top[i + 1:]:
            if b[1] >= a[3]:
                break
            # boxes are taller than the line pitch: over half a box is another line printed on top
            if min(a[2], b[2]) - max(a[0], b[0]) > 1 and \
                    min(a[3], b[3]) - max(a[1], b[1]) > 0.5 * min(a[3] - a[1], b[3] - b[1]):
                bad("page %d prints %r over %r" % (n, a[4], b[4]))
                break

# No empty line: a wrapped row is as tall as its lines, not a line taller
# (the lines of text below the Anomalies pages' heading follow one another
# at one pitch; an empty line leaves a gap of two)
for n, words in enumerate(pages, 1):
    heading = [w for w in words if w[4] == "Explanation"]
    if not heading:
        continue
    tops = sorted({round(w[1], 1) for w in words if w[1] >= heading[0][3] - 0.5})
    gaps = [b - a for a, b in zip(tops, tops[1:])]
    if len(gaps) < 2:
        continue
    pitch = min(gaps)
    for a, gap in zip(tops, gaps):
        if gap > 1.6 * pitch:
            bad("page %d leaves an empty line below the text at %.0f pt (%.1f pt to the next, lines are %.1f apart)"
                % (n, a, gap, pitch))

# Aligned: on the Daily Summary page the numbers end under their heading's end
daily = pages[1]
for heading in ("Credits", "Transactions", "Discrepancies"):
    head = [w for w in daily if w[4] == heading]
    if not head:
        bad("no %s heading on the Daily Summary page" % heading)
        continue
    h = head[0]
    lines = {}
    for w in daily:
        if w[1] > h[3] and w[0] < h[2] and w[2] > h[0]:
            lines[round(w[1])] = max(lines.get(round(w[1]), 0), w[2])
    if not lines or any(abs(end - h[2]) > 4 for end in lines.values()):
        bad("the %s column does not end under its heading (%.0f): %s" % (heading, h[2], sorted(lines.values())))
sys.exit(0 if ok else 1)
PY

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
