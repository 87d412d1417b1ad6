#!/usr/bin/python3
"""The Python peer of calo_recon.parse_log: a straightforward reading of a
balance-sync export with gzip + re, the way the seed prototype did it.

    /usr/bin/python3 bench/parse/peer.py DIR [--decimal] [--dataframe]

Walks DIR for *.gz log files, splits each into events (blank-line separated),
and extracts wallet transactions, balance errors and negative-balance
rejections into lists of dicts (optionally a pandas DataFrame).  Prints one
JSON line of counts and timings.  parse_events() is the like-for-like peer of
parse_log: every event to a dict with its kind and body.  verify_key.py reuses parse_tree() with exact
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


# --- every event, like parse_log: kind + body dict for each event ----------
JS_KEY = re.compile(r"^(\s*)(\w+): ", re.M)
JS_STRING = re.compile(r"'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`")
KINDS = (
    ("Processing message ", "processing_message"),
    ("Start syncing the balance", "transaction"),
    ("Subscription balance and payment balance are not in sync", "balance_error"),
    ("Skipping", "skip"),
    ("SubscriptionBalanceUpdated", "balance_updated"),
    ("Transaction Lock created", "transaction_lock"),
    ("transaction {", "transaction_json"),
    ("record.body {", "record_body"),
    ("An error occured while syncing", "sync_error"),
    ("Uncaught Exception", "uncaught_exception"),
    ("Invoke Error", "invoke_error"),
)
PLATFORM = (("START ", "start"), ("END ", "end"), ("REPORT ", "report"),
            ("INIT_START ", "init_start"), ("INIT_REPORT ", "init_report"), ('{"_aws"', "metric"))


def js_literal(text):
    """A Node console.log object literal as a dict (keys quoted, strings
    re-quoted as JSON, undefined as null), the usual prototype trick."""
    def requote(m):
        s = m.group(1) if m.group(1) is not None else m.group(2)
        return json.dumps(s.replace("\\\\", "\\"))
    out = JS_STRING.sub(requote, text)
    out = JS_KEY.sub(lambda m: m.group(1) + '"' + m.group(2) + '": ', out)
    out = re.sub(r"\{ (\w+): ", lambda m: '{ "' + m.group(1) + '": ', out)
    out = re.sub(r"\bundefined\b", "null", out)
    return json.loads(out)


def parse_events(text, number=float):
    """Every event of one log text as a dict (event_no, logged_at, request_id,
    level, kind, body): the Python equivalent of calo_recon.parse_log."""
    rows = []
    message = None
    for no, ev in enumerate(text.split("\n\n"), 1):
        if not ev:
            continue
        m = HEADER.match(ev)
        if not m:
            rows.append({"event_no": no, "kind": "malformed", "body": {"raw": ev}})
            continue
        ts, app_ts, request, level, msg = m.groups()
        row = {"event_no": no, "logged_at": app_ts or ts, "request_id": request,
               "level": level, "message_id": message}
        kind, body = "app_log", {"text": msg}
        try:
            if request is None:
                kind = next((k for p, k in PLATFORM if msg.startswith(p)), "platform_text")
                body = json.loads(msg, parse_float=number) if kind == "metric" else {"text": msg}
            else:
                kind = next((k for p, k in KINDS if msg.startswith(p)), None)
                if kind is None and msg.startswith("{\n  message: 'Subscriber will have a negative"):
                    kind = "negative_balance_rejection"
                if kind == "processing_message":
                    message = msg.split(" ", 2)[2]
                    row["message_id"] = message
                    body = {"message_id": message}
                elif kind in ("transaction", "balance_error", "transaction_lock", "negative_balance_rejection"):
                    body = js_literal(msg[msg.index("{"):])
                    t = body.get("transaction") if kind == "transaction" else None
                    if t and isinstance(t.get("metadata"), str):
                        t["metadata"] = json.loads(t["metadata"])
                elif kind in ("transaction_json", "record_body"):
                    body = json.loads(msg[msg.index("{"):], parse_float=number)
                elif kind is None:
                    kind = "app_log"
        except (ValueError, json.JSONDecodeError):
            kind, body = "malformed", {"raw": msg}
        row["kind"] = kind
        row["body"] = body
        rows.append(row)
    return rows


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
