#!/usr/bin/python3
"""Driver of bench/parse/run.sh: times the Python regex peer, parse_log and
ingest_file on one generated export inside a running throwaway cluster.

    bench.py EXPORT_DIR IMPORT_NAME PLAIN_DIR [REPEAT [CORE_BENCH]]

EXPORT_DIR   the generated tree (gzip), also copied under the import folder
IMPORT_NAME  its path relative to calo_recon.import_directory
PLAIN_DIR    the same log texts decompressed, one .log file each (absolute)
CORE_BENCH   the built bench/parse/core_bench.c (the C parser core alone)
"""
import gzip
import json
import os
import subprocess
import sys
import time

import pandas as pd
import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer  # noqa: E402

export_dir, import_name, plain_dir = sys.argv[1:4]
repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 3
core_bench = sys.argv[5] if len(sys.argv) > 5 else None


def best(fn):
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def line(what, secs, nbytes, ntxn):
    print(f"{what:<48} {secs:8.3f} s  {nbytes / 1e6 / secs:8.1f} MB/s  {ntxn / secs:10.0f} transactions/s")


# the texts, decompressed once, in the same order for both parsers
paths = sorted(os.path.join(d, n) for d, _, ns in os.walk(export_dir) for n in ns if n.endswith(".gz"))
texts = []
for p in paths:
    with gzip.open(p, "rb") as f:
        texts.append(f.read().decode("utf-8"))
nbytes = sum(len(t.encode("utf-8")) for t in texts)


def peer_full():
    out = peer.parse_tree(export_dir, float)
    pd.DataFrame(out["transactions"])
    pd.DataFrame(out["errors"])
    return out


def peer_parse_only():
    out = peer.new_result()
    for i, t in enumerate(texts):
        peer.parse_text(t, str(i), float, out)
    return out


def peer_all_events():
    n = 0
    for t in texts:
        n += len(peer.parse_events(t))
    return n


t_full, out = best(peer_full)
t_peer_all, peer_all_events_n = best(peer_all_events)
ntxn = len(out["transactions"])
nevents = out["events"]
t_peer, _ = best(peer_parse_only)

conn = psycopg2.connect(dbname="postgres")
conn.autocommit = True
cur = conn.cursor()
cur.execute("DROP DATABASE IF EXISTS calo_bench")
cur.execute("CREATE DATABASE calo_bench")
conn.close()
conn = psycopg2.connect(dbname="calo_bench")
conn.autocommit = True
cur = conn.cursor()
cur.execute("CREATE EXTENSION calo_recon")
# parse only: the texts are loaded into a table first (pg_read_file of the
# decompressed copies), so neither gzip nor file reading is timed
cur.execute("CREATE TABLE bench_texts (no int, t text)")
plain = sorted(os.listdir(plain_dir))
for i, n in enumerate(plain):
    cur.execute("INSERT INTO bench_texts VALUES (%s, pg_read_file(%s))", (i, os.path.join(plain_dir, n)))
cur.execute("VACUUM ANALYZE bench_texts")
cur.execute("SELECT sum(octet_length(t)) FROM bench_texts")
assert cur.fetchone()[0] == nbytes, "server texts differ from the peer's"


def ours_parse():
    cur.execute("SELECT count(*), count(*) FILTER (WHERE kind = 'transaction') "
                "FROM bench_texts, LATERAL calo_recon.parse_log(t)")
    return cur.fetchone()


t_ours, (ours_events, ours_txn) = best(ours_parse)
rel_paths = [import_name + "/" + os.path.relpath(p, export_dir) for p in paths]


def ours_parse_gzip():
    cur.execute("SELECT count(*) FROM unnest(%s::text[]) AS f(path), "
                "LATERAL calo_recon.parse_log(calo_recon.read_log_file(f.path))", (rel_paths,))
    return cur.fetchone()[0]


t_ours_gz, ours_gz_events = best(ours_parse_gzip)
assert ours_gz_events == ours_events


def ours_ingest():
    cur.execute("SELECT * FROM calo_recon.ingest_file(%s)", (import_name,))
    return dict(zip([d.name for d in cur.description], cur.fetchone()))


t0 = time.perf_counter()
res = ours_ingest()
t_ingest = time.perf_counter() - t0

core = None
if core_bench:
    core = json.loads(subprocess.run([core_bench, str(repeat)] + [os.path.join(plain_dir, n) for n in plain],
                                     check=True, capture_output=True, text=True).stdout)
    assert core["bytes"] == nbytes and core["events"] == ours_events

print(f"export: {len(paths)} log files, {nbytes / 1e6:.1f} MB of log text, {nevents} events, "
      f"{ntxn} transaction events (peer; {peer_all_events_n} events as dicts) / {ours_events} events, {ours_txn} transaction events (parse_log)")
print(f"ingest_file: {res}")
line("peer: gzip + re + DataFrame (whole tree)", t_full, nbytes, ntxn)
line("peer: re only (texts in memory)", t_peer, nbytes, ntxn)
line("peer: every event to a dict (parse_log twin)", t_peer_all, nbytes, ntxn)
if core:
    line("ours: C parser core alone (lp_parse, no SQL)", core["seconds"], nbytes, ntxn)
line("ours: parse_log (texts in a table)", t_ours, nbytes, ntxn)
line("ours: read_log_file + parse_log (gzip tree)", t_ours_gz, nbytes, ntxn)
line("ours: ingest_file (gzip+parse+store+reconcile)", t_ingest, nbytes, ntxn)
print(f"ratio parse_log vs peer every event (texts in memory):      {t_peer_all / t_ours:6.1f}x")
print(f"ratio parse_log vs peer re only (texts in memory):          {t_peer / t_ours:6.1f}x")
if core:
    print(f"ratio C parser core vs peer every event (texts in memory):  {t_peer_all / core['seconds']:6.1f}x")
    print(f"ratio C parser core vs peer re only (texts in memory):      {t_peer / core['seconds']:6.1f}x")
print(f"ratio read_log_file+parse_log vs peer gzip+re+DataFrame:    {t_full / t_ours_gz:6.1f}x")
print(f"ratio ingest_file vs peer gzip+re+DataFrame:                {t_full / t_ingest:6.1f}x")
conn.close()
conn = psycopg2.connect(dbname="postgres")
conn.autocommit = True
conn.cursor().execute("DROP DATABASE calo_bench")
