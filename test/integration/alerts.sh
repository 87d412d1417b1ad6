#!/usr/bin/env bash
# Real-time alerts: a LISTEN client (psycopg2) receives exactly one
# notification per inserting statement that raised alerts, with their count
# per kind and the range of their ids, and the alerts rows have the expected
# kinds for each inserted transaction: overdraft, chain, arithmetic, amount
# rule, model; nothing for clean rows, for rolled-back inserts or with
# calo_recon.alerts off.  The payload is {"alerts", "first_alert_id",
# "last_alert_id", "kinds"} only: a role without any grant may LISTEN too, and
# gets no user id, balance or amount (P4); the details come from
# calo_recon.alerts, which it cannot read.
set -euo pipefail
DB=calo_alerts
NOBODY=calo_alerts_nobody
dropdb --if-exists "$DB" >/dev/null 2>&1
psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS $NOBODY" >/dev/null
createdb "$DB"
trap 'dropdb --if-exists "$DB" >/dev/null 2>&1 || true; psql -X -q -d postgres -c "DROP ROLE IF EXISTS $NOBODY" >/dev/null 2>&1 || true' EXIT
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "CREATE EXTENSION calo_recon" -c "CREATE ROLE $NOBODY LOGIN"

/usr/bin/python3 - "$DB" "$NOBODY" <<'PY'
import json, select, sys, time
import psycopg2

db, nobody = sys.argv[1:3]
listener = psycopg2.connect(dbname=db)
listener.autocommit = True
listener.cursor().execute("LISTEN calo_recon_alerts")
# a role without any grant: LISTEN needs no privilege
outsider = psycopg2.connect(dbname=db, user=nobody)
outsider.autocommit = True
outsider.cursor().execute("LISTEN calo_recon_alerts")
outsider_payloads = []
writer = psycopg2.connect(dbname=db)
cur = writer.cursor()

def insert(rows, commit=True):
    cur.executemany("""INSERT INTO calo_recon.transactions
        (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""", rows)
    writer.commit() if commit else writer.rollback()

def receive(timeout=2.0):
    got, end = [], time.time() + timeout
    while time.time() < end:
        ready = select.select([listener, outsider], [], [], 0.2)[0]
        if outsider in ready:
            outsider.poll()
            while outsider.notifies:
                outsider_payloads.append(json.loads(outsider.notifies.pop(0).payload))
        if listener in ready:
            listener.poll()
            while listener.notifies:
                got.append(listener.notifies.pop(0))
    return got

NOTICE_KEYS = ["alerts", "first_alert_id", "kinds", "last_alert_id"]

def details(payloads):
    """The alerts rows of the notified statements (the payload has the count
    per kind and the id range, no details; one writer, so the range is exactly
    the statement's alerts)."""
    rows = []
    for p in payloads:
        cur.execute("""SELECT alert_id, txn_id, alert_kind, detail FROM calo_recon.alerts
                       WHERE alert_id BETWEEN %s AND %s ORDER BY alert_id""",
                    (p["first_alert_id"], p["last_alert_id"]))
        got = [dict(alert_id=r[0], txn_id=r[1], alert_kind=r[2], detail=r[3]) for r in cur.fetchall()]
        writer.commit()
        kinds = {}
        for r in got:
            kinds[r["alert_kind"]] = kinds.get(r["alert_kind"], 0) + 1
        assert len(got) == p["alerts"] and kinds == p["kinds"], ("payload and rows differ", p, got)
        rows += got
    return rows

def check(step, expected):
    notes = receive()
    payloads = [json.loads(n.payload) for n in notes]
    assert all(n.channel == "calo_recon_alerts" for n in notes)
    assert all(sorted(p) == NOTICE_KEYS for p in payloads), (step, payloads)
    # one notification for the statement, none when it raised nothing
    assert len(payloads) == (1 if expected else 0), (step, "one notification per statement", payloads)
    rows = details(payloads)
    seen = sorted((r["txn_id"], r["alert_kind"]) for r in rows)
    assert seen == sorted(expected), (step, seen, sorted(expected))
    print("alerts: %-34s %d notification(s)" % (step, len(notes)))
    return rows

T = "2024-03-01 10:%02d:00+00"
insert([("A1", "user-a", "CREDIT", "BHD", 100, 0, 0, 100, T % 0)])
check("clean credit", [])
insert([("A2", "user-a", "DEBIT", "BHD", 140, 0, 100, -40, T % 1)])
# 140 BHD is also above BHD's amount threshold (100, calo_recon.amount_thresholds)
p = check("overdraft", [("A2", "amount_rule"), ("A2", "overdraft")])
assert [float(r["detail"]["new_balance"]) for r in p if r["alert_kind"] == "overdraft"] == [-40], p
insert([("A3", "user-a", "DEBIT", "BHD", 10, 0, -30, -40, T % 2)])
check("chain break (+ overdraft)", [("A3", "chain"), ("A3", "overdraft")])
insert([("B1", "user-b", "CREDIT", "SAR", 10, 0, 0, 11, T % 3)])
p = check("arithmetic break", [("B1", "arithmetic")])
assert abs(float(p[0]["detail"]["difference"]) - 1) < 1e-9, p
insert([("C1", "user-c", "CREDIT", "SAR", 5000, 0, 0, 5000, T % 4)])
check("amount rule", [("C1", "amount_rule")])
# one multi-row statement: the statement-level trigger checks every row,
# the second row's chain against the first row of the same statement
cur.execute("""INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
    ('D1', 'user-d', 'CREDIT', 'AED', 20, 0, 0, 20, %s),
    ('D2', 'user-d', 'DEBIT', 'AED', 5, 0, 19, 14, %s),
    ('D3', 'user-d', 'DEBIT', 'AED', 30, 0, 14, -16, %s)""", (T % 5, T % 6, T % 7))
writer.commit()
check("multi-row statement", [("D2", "chain"), ("D3", "overdraft")])
insert([("E1", "user-e", "DEBIT", "BHD", 50, 0, 0, -50, T % 8)], commit=False)
check("rolled back insert", [])
cur.execute("SET calo_recon.alerts = off")
insert([("F1", "user-f", "DEBIT", "BHD", 50, 0, 0, -50, T % 9)])
check("alerts off", [])
cur.execute("RESET calo_recon.alerts")
writer.commit()

# the active model: train on ordinary rows, then insert an extreme one
cur.execute("SET calo_recon.alerts = off")
rows = []
for i in range(400):
    amount = 10 + (i * 7) % 23
    rows.append(("N%04d" % i, "user-n%02d" % (i % 20), "DEBIT", "SAR", amount, 0, 1000, 1000 - amount,
                 "2024-04-01 %02d:%02d:00+00" % (8 + (i // 60) % 8, i % 60)))
insert(rows)
cur.execute("RESET calo_recon.alerts")
# contamination 0.1: a threshold at the 90th percentile of the training
# scores, so the extreme row is flagged whatever the random splits
cur.execute("SELECT model_id FROM calo_recon.train_model('alerts', 0.1, 100, 256, 42)")
writer.commit()
receive(0.5)
cur.execute("""INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at) VALUES
    ('M1', 'user-m1', 'DEBIT', 'SAR', 900, 0, 999000, 998100, '2024-04-02 03:00:00+00'),
    ('M2', 'user-m2', 'DEBIT', 'SAR', 20, 0, 1000, 980, '2024-04-02 10:00:00+00')""")
writer.commit()
notes = details([json.loads(n.payload) for n in receive()])
# the trigger flags exactly what score_transactions() flags for the same rows
cur.execute("SELECT calo_recon.score_transactions(true)")
cur.execute("""SELECT s.txn_id FROM calo_recon.transaction_scores s JOIN calo_recon.models m
               ON m.model_id = s.model_id AND m.active WHERE s.txn_id IN ('M1', 'M2') AND s.flagged""")
flagged = sorted(r[0] for r in cur.fetchall())
writer.commit()
assert sorted(p["txn_id"] for p in notes if p["alert_kind"] == "model") == flagged, (notes, flagged)
assert "M1" in flagged, flagged
assert all(p["alert_kind"] == "model" for p in notes), notes
for p in notes:
    assert p["detail"]["score"] > p["detail"]["threshold"], p
print("alerts: %-34s %d notification(s)" % ("model (as score_transactions)", len(notes)))

cur.execute("SELECT count(*) FROM calo_recon.alerts")
total = cur.fetchone()[0]
assert total == 8 + len(flagged), total  # the 8 alerts checked above (A2: two), and the model's
writer.commit()

# the role without grants heard of every alert, and nothing but counts and ids
receive(0.5)
assert sum(p["alerts"] for p in outsider_payloads) == total, (outsider_payloads, total)
assert all(sorted(p) == NOTICE_KEYS for p in outsider_payloads), outsider_payloads
try:
    outsider.cursor().execute("SELECT detail FROM calo_recon.alerts")
    raise AssertionError("a role without grants read calo_recon.alerts")
except psycopg2.errors.InsufficientPrivilege:
    pass
print("alerts: %-34s %d notification(s), counts and ids only" % ("role without grants", len(outsider_payloads)))

# Alerts that agree with the reconciliation (issue 8 item 5).  A row that
# arrives out of chain order re-checks the stored rows after it: O3 is
# stored first (no predecessor, no chain check), O1 makes it a chain break
# (notified), O2 then is its true predecessor and the alert is resolved.
def alert_rows(txn_id):
    cur.execute("""SELECT alert_kind, detail->>'expected', resolved_at IS NULL, resolution
                   FROM calo_recon.alerts WHERE txn_id = %s ORDER BY alert_id""", (txn_id,))
    rows = cur.fetchall()
    writer.commit()
    return rows

cur.execute("UPDATE calo_recon.models SET active = false")  # only the walk's alerts below
writer.commit()
receive(0.5)
insert([("O3", "user-o", "DEBIT", "BHD", 10, 0, 80, 70, "2024-05-01 10:03:00+00")])
check("out of order: first row alone", [])
insert([("O1", "user-o", "DEBIT", "BHD", 10, 0, 100, 90, "2024-05-01 10:01:00+00")])
check("out of order: successor re-checked", [("O3", "chain")])
insert([("O2", "user-o", "DEBIT", "BHD", 10, 0, 90, 80, "2024-05-01 10:02:00+00")])
check("out of order: gap filled", [])
rows = alert_rows("O3")
assert len(rows) == 1 and rows[0][0] == "chain" and not rows[0][2], rows
assert rows[0][3].startswith("chain re-checked after an out-of-order insert: old_balance follows"), rows
print("alerts: %-34s resolved: %s" % ("out-of-order insert", rows[0][3]))

# P2 arrives between P1 and P3: P3's break is now against P2 (expected 70,
# not 90); the old alert is resolved and the new one raised and notified
insert([("P1", "user-p", "DEBIT", "BHD", 10, 0, 100, 90, "2024-05-01 11:01:00+00"),
        ("P3", "user-p", "DEBIT", "BHD", 10, 0, 50, 40, "2024-05-01 11:03:00+00")])
check("predecessor changes: first break", [("P3", "chain")])
insert([("P2", "user-p", "DEBIT", "BHD", 20, 0, 90, 70, "2024-05-01 11:02:00+00")])
check("predecessor changes: re-raised", [("P3", "chain")])
rows = alert_rows("P3")
assert [(r[0], float(r[1]), r[2]) for r in rows] == [("chain", 90, False), ("chain", 70, True)], rows
assert rows[0][3].startswith("chain re-checked after an out-of-order insert: a break against another"), rows
print("alerts: %-34s expected 90 resolved, expected 70 open" % "predecessor changes")

# reconcile() resolves an open alert its findings do not support (here P3
# corrected in place, which no insert re-checks), for the users it walks only
cur.execute("UPDATE calo_recon.transactions SET old_balance = 70, new_balance = 60 WHERE txn_id = 'P3'")
cur.execute("UPDATE calo_recon.transactions SET amount = 19, new_balance = 19 WHERE txn_id = 'D1'")
cur.execute("SELECT FROM calo_recon.reconcile(ARRAY['user-p'])")
writer.commit()
rows = alert_rows("P3")
assert not rows[1][2] and rows[1][3].startswith("not supported by reconcile() at "), rows
assert alert_rows("D2")[0][2], ("a user reconcile() did not walk", alert_rows("D2"))
# reconciling everyone: D2 is resolved too, and the open alerts of the walk's
# kinds are then exactly balance_breaks (but for the rows inserted with
# alerts off: F1 and the model's training rows)
cur.execute("SELECT FROM calo_recon.reconcile()")
cur.execute("""SELECT (SELECT count(*) FROM calo_recon.alerts WHERE resolved_at IS NULL
                        AND alert_kind IN ('arithmetic', 'chain', 'out_of_range')),
                      (SELECT count(*) FROM (
                           SELECT txn_id, alert_kind FROM calo_recon.alerts WHERE resolved_at IS NULL
                              AND alert_kind IN ('arithmetic', 'chain', 'out_of_range')
                           EXCEPT SELECT txn_id, break_kind FROM calo_recon.balance_breaks) x),
                      (SELECT count(*) FROM (
                           SELECT txn_id, break_kind FROM calo_recon.balance_breaks
                            WHERE break_kind IN ('arithmetic', 'chain', 'out_of_range')
                              AND user_id <> 'user-f' AND user_id NOT LIKE 'user-n%%'
                           EXCEPT SELECT txn_id, alert_kind FROM calo_recon.alerts WHERE resolved_at IS NULL) x)""")
open_alerts, extra, missing = cur.fetchone()
writer.commit()
assert not alert_rows("D2")[0][2], alert_rows("D2")
assert open_alerts > 0 and extra == 0 and missing == 0, (open_alerts, extra, missing)
check("resolving sends nothing", [])
print("alerts: %-34s %d open, as balance_breaks" % ("resolved by reconcile()", open_alerts))

# a DELETE raises nothing at once (no row is inserted); the reconcile() of
# its user raises the chain break it made, with the insert-time check's
# one notification
insert([("Q1", "user-q", "DEBIT", "BHD", 10, 0, 100, 90, "2024-05-01 12:01:00+00"),
        ("Q2", "user-q", "DEBIT", "BHD", 10, 0, 90, 80, "2024-05-01 12:02:00+00"),
        ("Q3", "user-q", "DEBIT", "BHD", 10, 0, 80, 70, "2024-05-01 12:03:00+00")])
check("delete: clean rows", [])
cur.execute("DELETE FROM calo_recon.transactions WHERE txn_id = 'Q2'")
writer.commit()
check("delete: nothing at once", [])
cur.execute("SELECT FROM calo_recon.reconcile_pending()")
writer.commit()
p = check("delete: raised by reconcile()", [("Q3", "chain")])
assert float(p[0]["detail"]["expected"]) == 90 and float(p[0]["detail"]["actual"]) == 80, p
total += 1
print("alerts: ok, %d alerts, each statement notified once" % total)
PY
