#!/usr/bin/env bash
# Real-time alerts: a LISTEN client (psycopg2) receives exactly one
# notification per calo_recon.alerts row, with the expected kinds for each
# inserted transaction: overdraft, chain, arithmetic, amount rule, model;
# nothing for clean rows, for rolled-back inserts or with calo_recon.alerts off.
# The payload is {"alert_id", "alert_kind"} only: a role without any grant
# may LISTEN too, and gets no user id, balance or amount (P4); the details
# come from calo_recon.alerts, which it cannot read.
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

def details(payloads):
    """The alerts rows of the notified ids (the payload has no details)."""
    ids = [p["alert_id"] for p in payloads]
    if not ids:
        return []
    cur.execute("""SELECT alert_id, txn_id, alert_kind, detail FROM calo_recon.alerts
                   WHERE alert_id = ANY(%s) ORDER BY alert_id""", (ids,))
    rows = [dict(alert_id=r[0], txn_id=r[1], alert_kind=r[2], detail=r[3]) for r in cur.fetchall()]
    writer.commit()
    assert sorted((r["alert_id"], r["alert_kind"]) for r in rows) == \
        sorted((p["alert_id"], p["alert_kind"]) for p in payloads), ("payload and row differ", payloads, rows)
    return rows

def check(step, expected):
    notes = receive()
    payloads = [json.loads(n.payload) for n in notes]
    assert all(n.channel == "calo_recon_alerts" for n in notes)
    assert all(sorted(p) == ["alert_id", "alert_kind"] for p in payloads), (step, payloads)
    ids = [p["alert_id"] for p in payloads]
    assert len(ids) == len(set(ids)), (step, "duplicate notification", ids)
    rows = details(payloads)
    seen = sorted((r["txn_id"], r["alert_kind"]) for r in rows)
    assert seen == sorted(expected), (step, seen, sorted(expected))
    print("alerts: %-34s %d notification(s)" % (step, len(notes)))
    return rows

T = "2024-03-01 10:%02d:00+00"
insert([("A1", "user-a", "CREDIT", "BHD", 100, 0, 0, 100, T % 0)])
check("clean credit", [])
insert([("A2", "user-a", "DEBIT", "BHD", 140, 0, 100, -40, T % 1)])
p = check("overdraft", [("A2", "overdraft")])
assert float(p[0]["detail"]["new_balance"]) == -40, p
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
assert total == 7 + len(flagged), total
writer.commit()

# the role without grants heard every alert, and nothing but ids and kinds
receive(0.5)
assert len(outsider_payloads) == total, (len(outsider_payloads), total)
assert all(sorted(p) == ["alert_id", "alert_kind"] for p in outsider_payloads), outsider_payloads
try:
    outsider.cursor().execute("SELECT detail FROM calo_recon.alerts")
    raise AssertionError("a role without grants read calo_recon.alerts")
except psycopg2.errors.InsufficientPrivilege:
    pass
print("alerts: %-34s %d notification(s), ids and kinds only" % ("role without grants", len(outsider_payloads)))
print("alerts: ok, %d alerts, each notified once" % total)
PY
