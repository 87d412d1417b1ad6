#!/usr/bin/env bash
# Health as operations sees it, outside one transaction: a successful
# refresh() writes a LOG line naming the run; every query of the
# postgres_exporter recipe (ops/postgres_exporter.yaml) runs as a monitor
# role and returns the columns its metrics name; check_health() fails with
# RH001 for the monitor when the last run failed.  Runs with the cluster
# environment of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
DB=calo_ops_health
MONITOR=calo_ops_monitor
fail() { echo "ops_health: FAIL: $*" >&2; exit 1; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }
cleanup() {
  dropdb --if-exists "$DB" >/dev/null 2>&1 || true
  psql -X -q -c "DROP ROLE IF EXISTS $MONITOR" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
createdb "$DB"
q -c "CREATE EXTENSION calo_recon"
psql -X -q -c "CREATE ROLE $MONITOR LOGIN"
q -c "SELECT calo_recon.grant_role('$MONITOR', 'monitor')" >/dev/null

# the success log line, at LOG level (here sent to the client)
out=$(PGOPTIONS='-c client_min_messages=log' psql -X -q -At -d "$DB" -c "SELECT run_id FROM calo_recon.refresh('samples')" 2>&1)
run=$(echo "$out" | tail -n 1)
grep -Eq "^LOG:  calo_recon\.refresh\(\) run $run succeeded in [0-9:.]+: 2 files, 14 transactions, [0-9]+ users reconciled, [0-9]+ breaks, 0 scored$" <<<"$out" \
  || { echo "$out"; fail "no success LOG line for run $run"; }
# a failed run writes no success line
out=$(PGOPTIONS='-c client_min_messages=log' psql -X -q -At -d "$DB" -c "SELECT status FROM calo_recon.refresh('../etc')" 2>&1)
grep -q 'succeeded in' <<<"$out" && fail "a failed run logged success"
grep -q '^failed$' <<<"$out" || { echo "$out"; fail "the failing run did not fail"; }

# the exporter recipe, query by query, as the monitor
python3 - "$DB" "$MONITOR" <<'PY' || fail "postgres_exporter recipe"
import subprocess, sys, yaml
db, role = sys.argv[1], sys.argv[2]
recipe = yaml.safe_load(open("ops/postgres_exporter.yaml"))
assert recipe, "empty recipe"
for name, spec in recipe.items():
    names = [next(iter(m)) for m in spec["metrics"]]
    out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-F", "\t", "-U", role, "-d", db,
                          "-c", spec["query"]], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{name}: {out.stderr.strip()}")
    lines = out.stdout.strip().split("\n")
    header, rows = lines[0].split("\t"), lines[1:-1]
    if header != names:
        sys.exit(f"{name}: columns {header}, metrics {names}")
    if not rows:
        sys.exit(f"{name}: no rows")
    for row in rows:
        for col, value in zip(header, row.split("\t")):
            usage = next(m[col]["usage"] for m in spec["metrics"] if col in m)
            if usage == "GAUGE":
                float(value)
    print(f"ops_health: {name}: {len(rows)} rows")
PY

# check_health() for the monitor: the failed run makes it RH001
err=$(psql -X -q -At -U "$MONITOR" -d "$DB" -v VERBOSITY=verbose -c "\\set VERBOSITY verbose" -c "SELECT calo_recon.check_health('1 day')" 2>&1 || true)
grep -q 'ERROR:  RH001: calo_recon is unhealthy: refresh() run [0-9]* failed: 42501' <<<"$err" \
  || { echo "$err"; fail "check_health() did not raise RH001 for the monitor"; }
echo "ops_health: ok"
