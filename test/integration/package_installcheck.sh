#!/usr/bin/env bash
# `make installcheck` as a DBA runs it on their own server: a fresh cluster
# whose import and export folders hold only the DBA's own files (nothing
# pre-copied by scripts/test.sh). The tests make their fixtures themselves,
# pass, and leave both folders exactly as they found them.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "package_installcheck: $*" >&2; exit 1; }

# a cluster of its own, apart from the suite's (which has the samples copied in)
unset CR_ROOT
source scripts/cluster.sh
trap cluster_destroy EXIT
cluster_start

# the DBA's own files in the configured folders
echo "a DBA's export" > "$CR_ROOT/import/their_export.log"
echo "a DBA's report" > "$CR_ROOT/export/their_report.csv"
[ "$(id -u)" -eq 0 ] && chown postgres "$CR_ROOT/import/their_export.log" "$CR_ROOT/export/their_report.csv"
before=$(cd "$CR_ROOT" && find import export | sort)

make -s installcheck >"$CR_ROOT/installcheck.log" 2>&1 || {
  tail -n 40 "$CR_ROOT/installcheck.log"; fail "make installcheck failed on a cluster without pre-copied fixtures"; }
[ "$(grep -c "All [0-9]* tests passed" "$CR_ROOT/installcheck.log")" = 2 ] ||
  fail "not both pg_regress and the isolation specs passed"

after=$(cd "$CR_ROOT" && find import export | sort)
[ "$before" = "$after" ] || fail "the configured folders changed: $(diff <(echo "$before") <(echo "$after") | tr '\n' ' ')"
[ "$(cat "$CR_ROOT/export/their_report.csv")" = "a DBA's report" ] || fail "a DBA's file was changed"

# a server without the export folder configured: installcheck stops at once, saying so
psql -X -q -d postgres -c "ALTER SYSTEM SET calo_recon.export_directory = ''" -c "SELECT pg_reload_conf()" >/dev/null
if make -s installcheck >"$CR_ROOT/unset.log" 2>&1; then fail "installcheck passed without calo_recon.export_directory"; fi
grep -q "calo_recon.export_directory is not set on this server" "$CR_ROOT/unset.log" ||
  { cat "$CR_ROOT/unset.log"; fail "no clear error without calo_recon.export_directory"; }
[ "$(cd "$CR_ROOT" && find import export | sort)" = "$after" ] || fail "the failed setup changed the configured folders"
echo "package_installcheck: installcheck passed on a bare cluster and left its folders as found"
