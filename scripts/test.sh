#!/usr/bin/env bash
# Runs every calo_recon test suite:
#   C unit tests of the plain cores (ASan + UBSan), a short libFuzzer run of
#   each fuzz target, then against a throwaway cluster: pg_regress, pgTAP and
#   the integration scripts in test/integration/.
# Ends with the line "tests: N passed, M failed"; exits non-zero on a failure.
#   FUZZ_SECONDS=N   seconds per fuzz target (default 10)
#   ONLY=stage,...   run only some stages: build,unit,fuzz,regress,tap,integration
#   INTEGRATION=glob run only the integration scripts whose name matches (upgrade, 'alerts*')
set -uo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)

# The suite's builds fail on a warning and keep Assert() active; the shipped
# flags do neither (mk/build_flags.mk).
export WERROR=1 ASSERT_CHECKING=1

bash scripts/install-deps.sh --test || { echo "tests: 0 passed, 1 failed"; exit 1; }
echo "dependencies ready ($SECONDS s)"

passed=0
failed=0
failures=()
want() { [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",$1,"* ]]; }
stage_began=$SECONDS
suite_began=$SECONDS
# Each stage's wall time follows its name, so a slow stage shows in CI's log.
record() {  # record NAME STATUS
  local took=$((SECONDS - stage_began))
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "ok   $1 (${took} s)"
  else failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1 (${took} s)"; fi
  stage_began=$SECONDS
}

if want build; then
  make -s clean >/dev/null 2>&1
  make -s 2>&1 | tee /tmp/calo_recon_build.log
  record build "${PIPESTATUS[0]}"
fi

if want unit && [ -d test/unit ]; then
  make -s -C test/unit run 2>&1
  record "unit tests" $?
fi

if want fuzz && [ -d test/fuzz ]; then
  make -s -C test/fuzz run FUZZ_SECONDS="${FUZZ_SECONDS:-10}" 2>&1 | tail -n 20
  record "fuzz smoke" "${PIPESTATUS[0]}"
fi

if want regress || want tap || want integration; then
  source scripts/cluster.sh
  trap cluster_destroy EXIT
  # calo_recon preloaded as a Citus coordinator loads it: its statement
  # hooks (src/glue/cluster_alert_hook_glue.c) run under every test
  cluster_start "shared_preload_libraries = 'pg_cron,calo_recon'" "cron.database_name = 'postgres'" "cron.use_background_workers = on"
  echo "cluster: $CR_ROOT (port $PGPORT)"
  stage_began=$SECONDS

  if want regress; then
    make -s installcheck 2>&1 | tail -n 60
    st=${PIPESTATUS[0]}
    [ $st -ne 0 ] && [ -f regression.diffs ] && head -n 200 regression.diffs
    record "pg_regress" "$st"
  fi
  # pg_regress makes its own fixtures (test/fixtures/setup.sql); pgTAP and
  # the integration scripts read the samples from the import folder itself.
  cluster_import test/data/samples test/data/bad

  if want tap && ls test/tap/*.sql >/dev/null 2>&1; then
    createdb calo_tap
    psql -qX -d calo_tap -c "CREATE EXTENSION pgtap" >/dev/null
    pg_prove -d calo_tap test/tap/*.sql
    record "pgTAP" $?
  fi

  if want integration && ls test/integration/${INTEGRATION:-*}.sh >/dev/null 2>&1; then
    for t in test/integration/${INTEGRATION:-*}.sh; do
      bash "$t"
      st=$?  # before the command substitution below resets $?
      record "integration $(basename "$t" .sh)" "$st"
    done
  fi
fi

for f in "${failures[@]}"; do echo "failed: $f"; done
echo "suite took $((SECONDS - suite_began)) s"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
