#!/usr/bin/env bash
# export_dashboard's page in a real browser: Debian's headless Chromium
# renders it (DOM, screenshot, PDF); the figures the rendered DOM shows equal
# the views' (figures per currency, breaks by kind, top anomalies in score
# order, top breaks) with their integer digits grouped by thousands, the
# page loads nothing (no script, no external reference), the printed PDF's
# first page is the summary, its number columns end under their headings and
# its charts are drawn.  The screenshot is kept in $CR_ROOT/render/ (RENDER_OUT=folder
# copies it there too) to look at.
set -euo pipefail
DB=calo_dashboard
fail() { echo "dashboard: $*" >&2; exit 1; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }
BROWSER=$(command -v chromium-headless-shell || true)
[ -n "$BROWSER" ] || fail "chromium-headless-shell is missing (scripts/install-deps.sh installs it)"
for tool in pdftotext pdftoppm; do command -v "$tool" >/dev/null || fail "$tool is missing"; done

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
WORK=$(mktemp -d /tmp/calo_dashboard.XXXXXX)
trap 'rm -rf "$WORK"; dropdb --if-exists "$DB" >/dev/null 2>&1 || true' EXIT
q -c "CREATE EXTENSION calo_recon"
q -c "SELECT * FROM calo_recon.ingest_file('samples/balance-sync-logs')" >/dev/null
# a user id a page must show as text, never as markup
q -c "SET calo_recon.alerts = off" -c "INSERT INTO calo_recon.transactions
        (txn_id, user_id, txn_type, source, action, currency, amount, vat, old_balance, new_balance, logged_at)
      VALUES ('01HDASHBOARD00000000000001', '<img src=x onerror=alert(1)>', 'DEBIT', 'MEAL', 'DEDUCT', 'SAR',
              5000, 0, 10, 1, '2024-01-20 00:00:00+00')"
q -c "SELECT * FROM calo_recon.reconcile()" >/dev/null
q -c "SELECT calo_recon.train_model(seed => 42)" >/dev/null
q -c "SELECT status FROM calo_recon.refresh()" | grep -qx succeeded || fail "refresh did not succeed"
FROM_TS='2023-12-01 00:00+00'; TO_TS='2024-03-01 00:00+00'
written=$(q -c "SELECT calo_recon.export_dashboard('dash/page.html', '$FROM_TS', '$TO_TS')")
[ "$written" = dash/page.html ] || fail "returned $written"
cp "$CR_ROOT/export/dash/page.html" "$WORK/"
[ "$(stat -c %a "$CR_ROOT/export/dash/page.html")" = 600 ] || fail "page mode is not 600"
grep -qi "<script" "$WORK/page.html" && fail "the page has a script"
grep -Eqi "(src|href)=\"?(https?:)?//" "$WORK/page.html" && fail "the page refers to something outside it"

browse() { HOME="$WORK" timeout 120 "$BROWSER" --no-sandbox --disable-gpu --hide-scrollbars \
             --user-data-dir="$WORK/profile" "$@" "file://$WORK/page.html" 2>/dev/null; }
browse --dump-dom > "$WORK/dom.html" || fail "Chromium could not render the page"
browse --window-size=1280,1500 --screenshot="$WORK/screenshot.png" >/dev/null || fail "no screenshot"
browse --print-to-pdf="$WORK/page.pdf" --no-pdf-header-footer >/dev/null || fail "no PDF"
[ -s "$WORK/screenshot.png" ] && [ -s "$WORK/page.pdf" ] || fail "empty screenshot or PDF"

# the views' figures of the same period
expected=$(q <<SQL
SELECT json_build_object(
  'figures', (SELECT json_object_agg(currency, json_build_array(transactions, credits, debits, vat, liability,
                                                               arithmetic, chain, conflicts, out_of_range,
                                                               overdrafts, discrepancies, anomalies))
              FROM (SELECT currency, sum(transactions)::text AS transactions,
                           -- the exact sum of the days, rounded once
                           calo_recon.round_money(sum(exact_credits), min(minor_unit))::text AS credits,
                           calo_recon.round_money(sum(exact_debits), min(minor_unit))::text AS debits,
                           calo_recon.round_money(sum(exact_vat), min(minor_unit))::text AS vat,
                           (array_agg(wallet_liability ORDER BY day DESC))[1]::text AS liability,
                           sum(arithmetic_breaks)::text AS arithmetic, sum(chain_breaks)::text AS chain,
                           sum(conflicts)::text AS conflicts, sum(out_of_range)::text AS out_of_range,
                           sum(overdrafts)::text AS overdrafts, sum(discrepancies)::text AS discrepancies,
                           sum(anomalies)::text AS anomalies
                    FROM calo_recon.daily_figures
                    WHERE day >= timezone('UTC', '$FROM_TS'::timestamptz)::date
                      AND day < timezone('UTC', '$TO_TS'::timestamptz)::date
                    GROUP BY currency) f),
  'breaks', (SELECT json_object_agg(k, json_build_array(
                 (SELECT count(*) FROM calo_recon.balance_breaks b WHERE b.break_kind = k
                    AND b.logged_at >= '$FROM_TS' AND b.logged_at < '$TO_TS')::text,
                 (SELECT count(DISTINCT user_id) FROM calo_recon.balance_breaks b WHERE b.break_kind = k
                    AND b.logged_at >= '$FROM_TS' AND b.logged_at < '$TO_TS')::text))
             FROM unnest(ARRAY['arithmetic', 'chain', 'conflict', 'out_of_range']) k),
  'anomalies', (SELECT json_agg(json_build_array(txn_id, user_id, explanation) ORDER BY score DESC NULLS LAST, txn_id COLLATE "C")
                FROM (SELECT * FROM calo_recon.anomalies WHERE logged_at >= '$FROM_TS' AND logged_at < '$TO_TS'
                      ORDER BY score DESC NULLS LAST, txn_id COLLATE "C" LIMIT 10) a),
  'breaks_top', (SELECT json_agg(txn_id ORDER BY abs(difference) DESC NULLS LAST, logged_at DESC, txn_id COLLATE "C")
                 FROM (SELECT * FROM calo_recon.balance_breaks WHERE logged_at >= '$FROM_TS' AND logged_at < '$TO_TS'
                       ORDER BY abs(difference) DESC NULLS LAST, logged_at DESC, txn_id COLLATE "C" LIMIT 10) b))
SQL
)

/usr/bin/python3 - "$WORK/dom.html" "$expected" <<'PY' || fail "the rendered page does not show the views' figures"
import json, re, sys
from html.parser import HTMLParser

class Tables(HTMLParser):
    """Rows of every table with an id: lists of (data-field, text); row attributes kept."""
    def __init__(self):
        super().__init__()
        self.tables, self.table, self.row, self.cell, self.ids = {}, None, None, None, {}
        self.current_id = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.current_id = a["id"]
            self.ids[a["id"]] = ""
        if tag == "table" and "id" in a:
            self.table = self.tables.setdefault(a["id"], [])
        elif tag == "tr" and self.table is not None:
            self.row = {"_attrs": a, "cells": []}
        elif tag == "td" and self.row is not None:
            self.cell = [a.get("data-field"), ""]
    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.row["cells"].append(tuple(self.cell)); self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row["cells"]:
                self.table.append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None
        elif tag in ("dd",):
            self.current_id = None
    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1] += data
        elif self.current_id in ("period-from", "period-to", "as-of", "exported-at"):
            self.ids[self.current_id] += data

dom = open(sys.argv[1], encoding="utf-8").read()
want = json.loads(sys.argv[2])
p = Tables(); p.feed(dom)
assert p.ids["period-from"] == "2023-12-01 00:00:00 UTC", p.ids
assert p.ids["period-to"] == "2024-03-01 00:00:00 UTC", p.ids
# the moments the page reports, to the second as the workbook shows them
for moment in ("as-of", "exported-at"):
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", p.ids[moment]), p.ids
figures = {}
for r in p.tables["figures"]:
    cells = dict(r["cells"])
    figures[cells["currency"]] = [cells[f] for f in ("transactions", "credits", "debits", "vat", "wallet_liability",
        "arithmetic_breaks", "chain_breaks", "conflicts", "out_of_range", "overdrafts", "discrepancies", "anomalies")]
# numbers as a finance reader expects them: digits grouped by thousands
shown = [v for f in figures.values() for v in f]
assert all(re.fullmatch(r"-?\d{1,3}(,\d{3})*(\.\d+)?", v) for v in shown), shown
assert any("," in v for v in shown), ("no figure of 1,000 or more to see grouped", shown)
figures = {c: [v.replace(",", "") for v in f] for c, f in figures.items()}
assert figures == want["figures"], (figures, want["figures"])
breaks = {r["_attrs"]["data-kind"]: [dict(r["cells"])["breaks"], dict(r["cells"])["users"]] for r in p.tables["breaks"]}
assert breaks == want["breaks"], (breaks, want["breaks"])
anomalies = [[dict(r["cells"])[f] or None for f in ("txn_id", "user_id", "explanation")] for r in p.tables["top-anomalies"]]
assert anomalies == want["anomalies"], (anomalies, want["anomalies"])
assert any(a[2] for a in anomalies), "no explanation shown"
assert "<img src=x onerror=alert(1)>" in [a[1] for a in anomalies], "the hostile user id is not shown as text"
assert "<img src=x" not in dom.replace("&lt;img src=x", ""), "markup from the data reached the DOM"
top = [dict(r["cells"])["txn_id"] for r in p.tables["top-breaks"]]
assert top == want["breaks_top"], (top, want["breaks_top"])
assert dom.count("<svg") == 3, dom.count("<svg")
print("dashboard: %d currencies, %d anomalies, %d breaks as the views say" % (len(figures), len(anomalies), len(top)))
PY

# printed: the first page is the summary, with the charts drawn in colour
pdftotext -f 1 -l 1 -layout "$WORK/page.pdf" "$WORK/page1.txt"
for text in "Balance reports" "Figures per currency" "Breaks by kind" "Wallet liability per currency"; do
  grep -qF "$text" "$WORK/page1.txt" || { cat "$WORK/page1.txt" >&2; fail "printed page 1 does not show \"$text\""; }
done
# the number columns end under their headings (right-aligned both)
pdftotext -f 1 -l 1 -bbox "$WORK/page.pdf" "$WORK/page1.html"
/usr/bin/python3 - "$WORK/page1.html" <<'PY' || fail "the printed figures are not under their headings"
import re, sys
words = [(float(a), float(b), float(c), float(d), w) for a, b, c, d, w in re.findall(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
    open(sys.argv[1], encoding="utf-8").read())]
for heading in ("Transactions", "Credits", "Discrepancies"):
    h = [w for w in words if w[4] == heading][0]
    ends = {round(w[1]): w[2] for w in words if h[3] < w[1] < h[3] + 100 and w[0] < h[2] and w[2] > h[0]
            and re.fullmatch(r"-?[\d,]+(\.\d+)?", w[4])}
    assert ends and all(abs(e - h[2]) < 2 for e in ends.values()), (heading, h[2], ends)
print("dashboard: the number columns end under their headings")
PY
pdftoppm -f 1 -l 1 -r 72 "$WORK/page.pdf" "$WORK/printed"
/usr/bin/python3 - "$WORK"/printed*.ppm <<'PY' || fail "no chart drawn on the printed page"
import sys
data = open(sys.argv[1], "rb").read()
fields, pos = [], 2
while len(fields) < 3:
    while data[pos:pos + 1].isspace():
        pos += 1
    end = pos
    while not data[end:end + 1].isspace():
        end += 1
    fields.append(int(data[pos:end])); pos = end
pixels = data[pos + 1:]
coloured = sum(1 for i in range(0, len(pixels), 3) if max(pixels[i:i + 3]) - min(pixels[i:i + 3]) > 60)
print("dashboard: printed page 1 has %d coloured pixels" % coloured)
assert coloured > 500, coloured
PY
mkdir -p "$CR_ROOT/render"
cp "$WORK/screenshot.png" "$CR_ROOT/render/dashboard.png"
if [ -n "${RENDER_OUT:-}" ]; then mkdir -p "$RENDER_OUT"; cp "$WORK/screenshot.png" "$RENDER_OUT/dashboard.png"; fi
echo "dashboard: ok"
