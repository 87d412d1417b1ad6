#!/usr/bin/env bash
# Ingest throughput on the sample export replicated COPIES times (each copy
# with shifted dates and its own transaction and request ids, so nothing is a
# duplicate): server-side ingest_file() and the client loader, each into a
# fresh database of the running test cluster (source scripts/cluster.sh;
# cluster_start first).  Prints MB/s of log text and transactions/s.
#   COPIES=200 bash tools/bench_ingest.sh
# Each copy gets its own users unless SAME_USERS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES=${COPIES:-200}
TREE=$CR_ROOT/import/bench
[ -n "${KEEP_TREE:-}" ] || rm -rf "$TREE"
/usr/bin/python3 - "$TREE" "$COPIES" <<'PY'
import datetime, glob, gzip, os, re, sys
tree, copies = sys.argv[1], int(sys.argv[2])
files = sorted(glob.glob('test/data/samples/balance-sync-logs/*/*/000000.gz'))
texts = [gzip.open(f).read().decode() for f in files]
users = sorted(set(re.findall(r"userId: '([0-9a-f-]{36})'", ''.join(texts))))
same_users = os.environ.get('SAME_USERS') == '1'
for n in range(copies):
    for i, text in enumerate(texts):
        day = lambda m: (datetime.date.fromisoformat(m.group(0)) + datetime.timedelta(days=n + 1)).isoformat()
        t = re.sub(r'\d{4}-\d\d-\d\d(?=T)', day, text)
        t = re.sub(r"'01H([0-9A-Z]{23})'", lambda m: "'%04dH%s'" % (n, m.group(1)[1:] + 'X'), t)
        t = re.sub(r'RequestId: ([0-9a-f]{8})', lambda m: 'RequestId: %08x' % (n * 16 + i), t)
        t = re.sub(r'\t([0-9a-f]{8})-', lambda m: '\t%08x-' % (n * 16 + i), t)
        # each copy has its own users (SAME_USERS=1 keeps them: every file then
        # re-reconciles the same ever longer histories)
        if not same_users:
            for user in users:
                t = t.replace(user, '%08x%s' % (n, user[8:]))
        d = os.path.join(tree, 'fn', '%04d-[$LATEST]%02d' % (n, i))
        os.makedirs(d, exist_ok=True)
        with gzip.open(os.path.join(d, '000000.gz'), 'wb') as g:
            g.write(t.encode())
PY
[ "$(id -u)" -eq 0 ] && chown -R postgres "$TREE"
MB=$(find "$TREE" -name '*.gz' -exec zcat {} + | wc -c | awk '{printf "%.2f", $1/1e6}')
echo "bench: $COPIES copies, $(find "$TREE" -name '*.gz' | wc -l) files, $MB MB of log text"

for db in calo_bench_server calo_bench_client; do
  dropdb --if-exists "$db" >/dev/null 2>&1; createdb "$db"
  psql -qX -d "$db" -c "CREATE EXTENSION calo_recon" >/dev/null
done
start=$(date +%s.%N)
txns=$(psql -qAtX -d calo_bench_server -c "SELECT transactions FROM calo_recon.ingest_file('bench')")
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v mb="$MB" -v t="$txns" \
  'BEGIN { d = e - s; printf "ingest_file:     %.2f s, %.2f MB/s, %.0f transactions/s (%d transactions)\n", d, mb / d, t / d, t }'
make -s tools PG_CONFIG=/usr/bin/pg_config >/dev/null
start=$(date +%s.%N)
tools/calo_recon_load --quiet --dbname calo_bench_client "$TREE" >/dev/null
end=$(date +%s.%N)
txns=$(psql -qAtX -d calo_bench_client -c "SELECT count(*) FROM calo_recon.transactions")
awk -v s="$start" -v e="$end" -v mb="$MB" -v t="$txns" \
  'BEGIN { d = e - s; printf "calo_recon_load: %.2f s, %.2f MB/s, %.0f transactions/s (%d transactions)\n", d, mb / d, t / d, t }'
dropdb calo_bench_server; dropdb calo_bench_client
[ -n "${KEEP_TREE:-}" ] || rm -rf "$TREE"
