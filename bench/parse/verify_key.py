#!/usr/bin/python3
"""Checks a generated export against its answer key without PostgreSQL:
re-reads the logs with the regex peer (exact Decimal numbers) and applies the
reconciliation rules (README, "Reconciliation") independently of the generator.

    /usr/bin/python3 bench/parse/verify_key.py DIR      (exit 1 on a mismatch)
"""
import json
import os
import sys
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer  # noqa: E402

MINOR = {"BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "SAR": 2, "AED": 2, "QAR": 2}


def tolerance(currency):
    return Decimal(5) / Decimal(10) ** (MINOR.get(currency, 2) + 1)


def payload(t):
    return {k: v for k, v in t.items() if k not in ("logged_at", "request_id", "message_id", "source_file")}


def main():
    root = sys.argv[1]
    key = json.load(open(os.path.join(root, "answer-key.json")), parse_float=Decimal)
    exp = key["expected"]
    out = peer.parse_tree(root, Decimal)

    stored, dups, conflicts = {}, [], []
    for t in out["transactions"]:
        first = stored.get(t["id"])
        if first is None:
            stored[t["id"]] = t
        elif payload(first) == payload(t):
            dups.append(t["id"])
        else:
            conflicts.append(t["id"])
    currency_of = {}
    chains = {}
    for t in stored.values():
        chains.setdefault(t["userId"], []).append(t)
        currency_of[t["userId"]] = t["currency"]
    arith, chain, drift, over = [], [], [], []
    for rows in chains.values():
        rows.sort(key=lambda r: (r["logged_at"], r["id"]))
        prev = None
        for r in rows:
            tol = tolerance(r["currency"])
            net = r["amount"] - r["vat"]
            if r["legacy"]:
                move = r["newBalance"] - r["oldBalance"]
                sign = (move > 0) - (move < 0)
                expected = r["oldBalance"] + sign * net
            else:
                expected = r["oldBalance"] + (net if r["type"] == "CREDIT" else -net)
            diff = abs(r["newBalance"] - expected)
            if diff >= tol:
                arith.append(r["id"])
            elif diff > 0:
                drift.append(r["id"])
            if prev is not None and abs(r["oldBalance"] - prev["newBalance"]) >= tol:
                chain.append(r["id"])
            if r["newBalance"] < 0:
                over.append(r["id"])
            prev = r
    discrepancies = sum(1 for e in out["errors"]
                        if abs(e["subscriptionBalance"] - e["paymentBalance"])
                        >= tolerance(currency_of.get(e["userId"], "SAR")))

    got = {
        "events": out["events"], "sync_blocks": len(out["transactions"]),
        "duplicate_deliveries": len(dups), "conflicts": len(conflicts),
        "distinct_transactions": len(stored), "error_blocks": len(out["errors"]),
        "discrepancies": discrepancies, "negative_balance_rejections": len(out["rejections"]),
        "overdrafts": len(over), "arithmetic_breaks": len(arith), "chain_breaks": len(chain),
        "precision_drift": len(drift), "malformed_events": out["malformed"],
        "truncated_events": out["truncated"], "log_files": out["files"],
        "legacy_transactions": sum(1 for t in stored.values() if t["legacy"]),
    }
    sets = {"arithmetic_break_ids": arith, "chain_break_ids": chain, "precision_drift_ids": drift,
            "overdraft_ids": over, "conflict_ids": conflicts}
    bad = 0
    for k, v in got.items():
        ok = exp.get(k) == v
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {k}: key {exp.get(k)} logs {v}")
    for k, v in sets.items():
        ok = sorted(exp.get(k, [])) == sorted(v)
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {k}: {len(v)} ids")
    ok = sorted(key["duplicate_deliveries"]) == sorted(dups)
    bad += not ok
    print(f"{'ok ' if ok else 'BAD'} duplicate_deliveries ids")
    if key["generator"]["transactions_listed"]:
        truth = {t["id"]: sorted(t["truth"]) for t in key["transactions"]}
        mine = {i: [] for i in stored}
        for name, ids in (("arithmetic_break", arith), ("chain_break", chain),
                          ("precision_drift", drift), ("overdraft", over)):
            for i in ids:
                mine[i].append(name)
        ok = truth == {i: sorted(v) for i, v in mine.items()}
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} per-transaction truth lists")
    print("verify_key:", "ok" if not bad else f"{bad} mismatches")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
