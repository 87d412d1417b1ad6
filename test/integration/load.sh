#!/usr/bin/env bash
# A short run of the load test (bench/load/run.sh) in the suite: concurrent
# inserts with alerts, refreshes and BI queries, then its correctness checks
# (no errors or deadlocks, every row reconciled and scored once, every alert
# notified once). It asserts nothing about speed.
set -euo pipefail
cd "$(dirname "$0")/../.."
# its own throwaway cluster, not the suite's
env -u CR_ROOT -u CR_PORT DURATION=15 INSERT_CLIENTS=3 BI_CLIENTS=1 REFRESH_PERIOD=3 \
  bash bench/load/run.sh > /tmp/calo_recon_load_test.log 2>&1 || { tail -n 40 /tmp/calo_recon_load_test.log; exit 1; }
grep -E '^(ok|FAIL|load:)' /tmp/calo_recon_load_test.log
