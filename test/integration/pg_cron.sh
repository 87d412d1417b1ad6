#!/usr/bin/env bash
# calo_recon.refresh() run by a real pg_cron (preloaded by scripts/test.sh):
# a scheduled refresh succeeds and is recorded in calo_recon.runs, a failing
# one (refresh of a missing folder, committed, then check_last_refresh())
# shows as failed in cron.job_run_details and is still recorded; two overlapping refreshes: the
# second returns 'skipped' at once.
# pg_cron 1.4 schedules by the minute (no '5 seconds' form), so the wait is
# bounded at 90 s. Jobs connect through the socket folder (listen_addresses
# is empty), set in cron.job.nodename.
set -euo pipefail
OK_DB=calo_cron
FAIL_DB=calo_cron_fail
fail() { echo "pg_cron: $*" >&2; exit 1; }
q() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

psql -XAt -c "SHOW shared_preload_libraries" | grep -q pg_cron || fail "pg_cron is not preloaded"
cleanup() {
  q postgres -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'calo_recon_test_%'" >/dev/null 2>&1 || true
  dropdb --if-exists "$OK_DB" >/dev/null 2>&1 || true
  dropdb --if-exists "$FAIL_DB" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
for db in "$OK_DB" "$FAIL_DB"; do
  createdb "$db"
  q "$db" -c "CREATE EXTENSION calo_recon"
done
q postgres -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_cron"

# every minute; the advisory lock is per database, so the two jobs never skip each other
q postgres <<SQL >/dev/null
SELECT cron.schedule_in_database('calo_recon_test_ok', '* * * * *',
                                 \$\$SELECT calo_recon.refresh('samples')\$\$, '$OK_DB');
SELECT cron.schedule_in_database('calo_recon_test_fail', '* * * * *',
                                 \$\$BEGIN; SELECT calo_recon.refresh('no-such-folder'); COMMIT; SELECT calo_recon.check_last_refresh()\$\$, '$FAIL_DB');
UPDATE cron.job SET nodename = '$PGHOST' WHERE jobname LIKE 'calo_recon_test_%';
SQL

ok_status=""; fail_status=""
for _ in $(seq 1 90); do
  ok_status=$(q postgres -c "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                             WHERE j.jobname = 'calo_recon_test_ok' AND d.status IN ('succeeded', 'failed')
                             ORDER BY d.runid LIMIT 1")
  fail_status=$(q postgres -c "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                               WHERE j.jobname = 'calo_recon_test_fail' AND d.status IN ('succeeded', 'failed')
                               ORDER BY d.runid LIMIT 1")
  [ -n "$ok_status" ] && [ -n "$fail_status" ] && break
  sleep 1
done
q postgres -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'calo_recon_test_%'" >/dev/null
[ -n "$ok_status" ] && [ -n "$fail_status" ] || fail "pg_cron did not run the jobs within 90 s"

[ "$ok_status" = succeeded ] || fail "scheduled refresh: $ok_status: $(q postgres -c "SELECT return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'calo_recon_test_ok'")"
run=$(q "$OK_DB" -c "SELECT status || ' files=' || files || ' transactions=' || transactions FROM calo_recon.runs ORDER BY run_id LIMIT 1")
echo "pg_cron: scheduled run: $run"
[[ "$run" == succeeded* ]] || fail "runs row of the scheduled refresh: $run"
if q "$OK_DB" -c "SELECT count(*) FROM calo_recon.ingested_files" | grep -qx 0; then
  fail "the scheduled refresh ingested nothing"
fi

[ "$fail_status" = failed ] || fail "a failing refresh shows as $fail_status in cron.job_run_details"
failed_run=$(q "$FAIL_DB" -c "SELECT status || ': ' || coalesce(error, '') FROM calo_recon.runs ORDER BY run_id LIMIT 1")
echo "pg_cron: failing run: $failed_run"
[[ "$failed_run" == failed:* ]] || fail "the failed run was not recorded: $failed_run"

# overlap: the first run holds the lock for 4 s; the second returns skipped at once
q "$OK_DB" -c "BEGIN; SELECT calo_recon.refresh('samples'); SELECT pg_sleep(4); COMMIT;" >/dev/null &
holder=$!
sleep 1
start=$(date +%s%N)
second=$(q "$OK_DB" -c "SELECT status || ': ' || error FROM calo_recon.refresh('samples')")
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
wait "$holder" || fail "the first overlapping refresh failed"
echo "pg_cron: overlapping run: $second (${elapsed_ms} ms)"
[[ "$second" == "skipped: another calo_recon.refresh() is in progress" ]] || fail "second run: $second"
[ "$elapsed_ms" -lt 2500 ] || fail "the skipped run waited ${elapsed_ms} ms"
[ "$(q "$OK_DB" -c "SELECT count(*) FROM calo_recon.runs WHERE status = 'skipped'")" = 1 ] || fail "skipped run not recorded once"
echo "pg_cron: ok"
