#!/usr/bin/python3
"""The Python peer of calo_recon.parse_log: a straightforward reading of a
balance-sync export with gzip + re, the way the seed prototype did it.

    /usr/bin/python3 bench/parse/peer.py DIR [--decimal] [--dataframe]

Walks DIR for *.gz log files, splits each into events (blank-line separated),
and extracts wallet transactions, balance errors and negative-balance
rejections into lists of dicts (optionally a pandas DataFrame).  Prints one
JSON line of counts and timings.  verify_key.py reuses parse_tree() with exact
Decimal numbers to check a generated answer key independently.
"""
import gzip
import json
import os
import re
import sys
import time
from decimal import Decimal

HEADER = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+Z) (?:(\d{4}-\d\d-\d\dT[\d:.]+Z)\t([^\t]*)\t([A-Z]+)\t)?(.*)\Z", re.S)
TXN = re.compile(r"^Start syncing the balance \{\n  transaction: \{\n(.*)\n  \}\n\}\Z", re.S)
ERR = re.compile(r"^Subscription balance and payment balance are not in sync \{\n(.*)\n\}\Z", re.S)
REJ = re.compile(r"^\{\n  message: 'Subscriber will have a negative balance[^']*',\n  data: \{\n(.*)\n  \}\n\}\Z", re.S)
FIELD = re.compile(r"^ *(\w+): ('(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`|-?\d+(?:\.\d+)?(?:e-?\d+)?|true|false|undefined),?$")
PROCESSING = re.compile(r"^Processing message (\S+)$")

TXN_KEYS_CURRENT = ["id", "type", "source", "action", "userId", "paymentBalance",
                    "updatePaymentBalance", "metadata", "currency", "amount", "vat",
                    "oldBalance", "newBalance"]
TXN_KEYS_LEGACY = ["id", "userId", "currency", "amount", "vat", "oldBalance", "newBalance"]
NUMERIC = {"amount", "vat", "oldBalance", "newBalance", "paymentBalance",
           "subscriptionBalance", "currentBalance"}


class Malformed(Exception):
    pass


def literal(key, raw, number):
    if raw[0] in "'`":
        return raw[1:-1].replace("\\\\", "\\")
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "undefined":
        return None
    if key in NUMERIC:
        return number(raw)
    raise Malformed(key)


def fields(block, number):
    out = {}
    for line in block.split("\n"):
        m = FIELD.match(line)
        if not m:
            raise Malformed(line)
        out[m.group(1)] = literal(m.group(1), m.group(2), number)
    return out


def parse_file(path, rel, number, out):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    out["bytes"] += len(raw)
    parse_text(raw.decode("utf-8"), rel, number, out)


def new_result():
    return {"events": 0, "unparsed": 0, "truncated": 0, "malformed": 0, "files": 0,
            "bytes": 0, "transactions": [], "errors": [], "rejections": []}


def parse_text(text, rel, number, out):
    events = text.split("\n\n")
    truncated = not text.endswith("\n\n")
    if events and events[-1] == "":
        events.pop()
    message = None
    for no, ev in enumerate(events, 1):
        out["events"] += 1
        m = HEADER.match(ev)
        if not m:
            out["unparsed"] += 1
            continue
        ts, _, request, level, msg = m.groups()
        if truncated and no == len(events):
            out["truncated"] += 1
            continue
        if request is None:
            continue
        pm = PROCESSING.match(msg)
        if pm:
            message = pm.group(1)
            continue
        try:
            t = TXN.match(msg)
            if t:
                d = fields(t.group(1), number)
                keys = list(d)
                if keys not in (TXN_KEYS_CURRENT, TXN_KEYS_LEGACY):
                    raise Malformed(keys)
                d.update(logged_at=ts, request_id=request, message_id=message, source_file=rel,
                         legacy=keys == TXN_KEYS_LEGACY)
                out["transactions"].append(d)
                continue
            if msg.startswith("Start syncing the balance"):
                raise Malformed("transaction")
            e = ERR.match(msg)
            if e:
                d = fields(e.group(1), number)
                d.update(logged_at=ts, request_id=request, message_id=message, source_file=rel)
                out["errors"].append(d)
                continue
            r = REJ.match(msg)
            if r:
                d = fields(r.group(1), number)
                d.update(logged_at=ts, request_id=request, source_file=rel)
                out["rejections"].append(d)
        except Malformed:
            out["malformed"] += 1


def parse_tree(root, number=float):
    out = new_result()
    paths = []
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(".gz"):
                paths.append(os.path.join(d, n))
    for p in sorted(paths):
        rel = os.path.relpath(p, root)
        try:
            parse_file(p, rel, number, out)
        except (OSError, EOFError, UnicodeDecodeError):
            continue
        out["files"] += 1
    return out


def main():
    args = sys.argv[1:]
    root = args[0]
    number = Decimal if "--decimal" in args else float
    t0 = time.perf_counter()
    out = parse_tree(root, number)
    if "--dataframe" in args:
        import pandas as pd
        pd.DataFrame(out["transactions"])
        pd.DataFrame(out["errors"])
    secs = time.perf_counter() - t0
    print(json.dumps({"files": out["files"], "events": out["events"],
                      "transactions": len(out["transactions"]), "errors": len(out["errors"]),
                      "rejections": len(out["rejections"]), "malformed": out["malformed"],
                      "truncated": out["truncated"], "bytes": out["bytes"],
                      "seconds": round(secs, 3)}))


if __name__ == "__main__":
    main()
