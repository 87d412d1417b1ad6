#!/usr/bin/env bash
# calo_recon.refresh() run by a real pg_cron (preloaded by scripts/test.sh):
# a scheduled CALL calo_recon.refresh_job() succeeds and is recorded in
# calo_recon.runs; a failing one (a missing folder) shows as failed in
# cron.job_run_details and is still recorded; check_health() scheduled as a
# monitor fails with its message where no refresh succeeded; two overlapping
# refreshes: the second returns 'skipped' without waiting and names the
# process that holds the writer lock; purge() forgets old job history.
# (In background workers a job's command is one transaction, so the
# function form BEGIN; SELECT refresh(); COMMIT; ... needs connection mode:
# README.)
# pg_cron 1.4 schedules by the minute (no '5 seconds' form), so the wait is
# bounded at 90 s.  The recipe of the README as written: the server listens
# on a socket only (listen_addresses is empty) and pg_cron runs its jobs in
# background workers (cron.use_background_workers = on, set by
# scripts/test.sh), so no job opens a connection and nothing needs
# cron.host, cron.job.nodename or a password; the jobs run as an operator
# role (grant_role 'operator' and nothing else: no pg_read_server_files,
# no write right on the record; it writes through the SECURITY DEFINER entry
# points), not as a superuser.
set -euo pipefail
OK_DB=calo_cron
FAIL_DB=calo_cron_fail
JOB_FAIL_DB=calo_cron_job_fail
OPERATOR=calo_cron_operator
MONITOR=calo_cron_monitor
fail() { echo "pg_cron: $*" >&2; exit 1; }
q() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -At -d "$db" "$@"; }

psql -XAt -c "SHOW shared_preload_libraries" | grep -q pg_cron || fail "pg_cron is not preloaded"
cleanup() {
  q postgres -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'calo_recon_test_%'" >/dev/null 2>&1 || true
  dropdb --if-exists "$OK_DB" >/dev/null 2>&1 || true
  dropdb --if-exists "$FAIL_DB" >/dev/null 2>&1 || true
  dropdb --if-exists "$JOB_FAIL_DB" >/dev/null 2>&1 || true
  q postgres -c "DROP ROLE IF EXISTS $OPERATOR" -c "DROP ROLE IF EXISTS $MONITOR" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
[ "$(q postgres -c "SHOW cron.use_background_workers")" = on ] || fail "cron.use_background_workers is off"
q postgres -c "CREATE ROLE $OPERATOR LOGIN" -c "CREATE ROLE $MONITOR LOGIN"
for db in "$OK_DB" "$FAIL_DB" "$JOB_FAIL_DB"; do
  createdb "$db"
  q "$db" -c "CREATE EXTENSION calo_recon"
  q "$db" -c "SELECT calo_recon.grant_role('$OPERATOR', 'operator')" -c "SELECT calo_recon.grant_role('$MONITOR', 'monitor')" >/dev/null
done
q postgres -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS pg_cron"

# every minute; the advisory lock is per database, so the jobs never skip each other
q postgres <<SQL >/dev/null
SELECT cron.schedule_in_database('calo_recon_test_ok', '* * * * *',
                                 \$\$CALL calo_recon.refresh_job('samples')\$\$, '$OK_DB', '$OPERATOR');
SELECT cron.schedule_in_database('calo_recon_test_job_fail', '* * * * *',
                                 \$\$CALL calo_recon.refresh_job('no-such-folder')\$\$, '$JOB_FAIL_DB', '$OPERATOR');
SELECT cron.schedule_in_database('calo_recon_test_fail', '* * * * *',
                                 \$\$SELECT calo_recon.check_health('1 hour')\$\$, '$FAIL_DB', '$MONITOR');
SQL
[ "$(q postgres -c "SELECT string_agg(DISTINCT username || '@' || nodename, ',' ORDER BY username || '@' || nodename) FROM cron.job WHERE jobname LIKE 'calo_recon_test_%'")" = "$MONITOR@localhost,$OPERATOR@localhost" ] \
  || fail "the jobs are not scheduled as written (operator and monitor, default nodename)"

job_status() {  # job_status JOBNAME: the first finished run's status
  q postgres -c "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                 WHERE j.jobname = '$1' AND d.status IN ('succeeded', 'failed')
                 ORDER BY d.runid LIMIT 1"
}
ok_status=""; fail_status=""; job_fail_status=""
for _ in $(seq 1 90); do
  ok_status=$(q postgres -c "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                             WHERE j.jobname = 'calo_recon_test_ok' AND d.status IN ('succeeded', 'failed')
                             ORDER BY d.runid LIMIT 1")
  fail_status=$(q postgres -c "SELECT d.status FROM cron.job_run_details d JOIN cron.job j USING (jobid)
                               WHERE j.jobname = 'calo_recon_test_fail' AND d.status IN ('succeeded', 'failed')
                               ORDER BY d.runid LIMIT 1")
  job_fail_status=$(job_status calo_recon_test_job_fail)
  [ -n "$ok_status" ] && [ -n "$fail_status" ] && [ -n "$job_fail_status" ] && break
  sleep 1
done
q postgres -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'calo_recon_test_%'" >/dev/null
[ -n "$ok_status" ] && [ -n "$fail_status" ] && [ -n "$job_fail_status" ] || fail "pg_cron did not run the jobs within 90 s"

[ "$ok_status" = succeeded ] || fail "scheduled refresh: $ok_status: $(q postgres -c "SELECT return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid) WHERE j.jobname = 'calo_recon_test_ok'")"
run=$(q "$OK_DB" -c "SELECT status || ' files=' || files || ' transactions=' || transactions FROM calo_recon.runs ORDER BY run_id LIMIT 1")
echo "pg_cron: scheduled run: $run"
[[ "$run" == succeeded* ]] || fail "runs row of the scheduled refresh: $run"
if q "$OK_DB" -c "SELECT count(*) FROM calo_recon.ingested_files" | grep -qx 0; then
  fail "the scheduled refresh ingested nothing"
fi

# the health check, run as the monitor: no refresh has succeeded there
[ "$fail_status" = failed ] || fail "a failing check_health() shows as $fail_status in cron.job_run_details"
health=$(q postgres -c "SELECT d.return_message FROM cron.job_run_details d  -- its job is unscheduled by now
                        WHERE d.database = '$FAIL_DB' AND d.username = '$MONITOR' AND d.status = 'failed'
                        ORDER BY d.runid LIMIT 1")
echo "pg_cron: health check: $health"
[[ "$health" == *"calo_recon is unhealthy: no refresh() run has succeeded"* ]] || fail "health check job: $health"

[ "$job_fail_status" = failed ] || fail "a failing CALL refresh_job() shows as $job_fail_status in cron.job_run_details"
job_failed_run=$(q "$JOB_FAIL_DB" -c "SELECT status || ': ' || coalesce(error, '') FROM calo_recon.runs ORDER BY run_id LIMIT 1")
echo "pg_cron: failing job run: $job_failed_run"
[[ "$job_failed_run" == failed:* ]] || fail "the failed job run was not recorded: $job_failed_run"

# overlap: a first run holds the writer lock until the gate session (which
# holds advisory lock 4242) ends; the second returns skipped without waiting
# (a statement_timeout would fail it otherwise) and names the first
q "$OK_DB" -c "SET application_name = 'calo_recon_test_gate'" -c "SELECT pg_advisory_lock(4242)" \
  -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
gate=$!
wait_for() {  # wait_for SQL: until it returns t (each step waits on a lock, so this is short)
  for _ in $(seq 1 600); do [ "$(q "$OK_DB" -c "$1")" = t ] && return 0; sleep 0.1; done
  fail "timed out waiting for: $1"
}
wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted)"
q "$OK_DB" -c "BEGIN; SELECT calo_recon.refresh('samples'); SELECT pg_advisory_xact_lock_shared(4242); COMMIT;" >/dev/null &
holder=$!
wait_for "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted)"
second=$(q "$OK_DB" -c "SET statement_timeout = '30s'" -c "SELECT status || ': ' || error FROM calo_recon.refresh('samples')")
q "$OK_DB" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'calo_recon_test_gate'" >/dev/null
wait "$holder" || fail "the first overlapping refresh failed"
wait "$gate" || true
echo "pg_cron: overlapping run: $second"
[[ "$second" =~ ^skipped:\ not\ started:\ .*\ held\ by\ process\ [0-9]+\ \(active\):\ BEGIN\;\ SELECT\ calo_recon\.refresh ]] || fail "second run: $second"
[ "$(q "$OK_DB" -c "SELECT count(*) FROM calo_recon.runs WHERE status = 'skipped'")" = 1 ] || fail "skipped run not recorded once"
# retention: purge() forgets the old history of this database's calo_recon
# jobs (pg_cron lives in the postgres database here), whichever role ran
# them (the README's recipe: refresh and purge as an operator, the health
# check as a monitor), nothing else: not other databases', not other jobs'
q postgres -c "CREATE EXTENSION calo_recon" -c "SELECT count(*) FROM calo_recon.grant_role('$OPERATOR', 'operator')" >/dev/null
q postgres <<SQL >/dev/null
INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
VALUES (0, -1, 0, 'postgres', 'postgres', 'CALL calo_recon.refresh_job()', 'succeeded', '', now() - interval '400 days', now() - interval '400 days'),
       (0, -2, 0, 'postgres', 'postgres', 'CALL calo_recon.refresh_job()', 'succeeded', '', now() - interval '1 day', now() - interval '1 day'),
       (0, -3, 0, 'postgres', 'postgres', 'VACUUM', 'succeeded', '', now() - interval '400 days', now() - interval '400 days'),
       (0, -4, 0, 'calo_cron', 'postgres', 'CALL calo_recon.refresh_job()', 'succeeded', '', now() - interval '400 days', now() - interval '400 days'),
       (0, -5, 0, 'postgres', '$OPERATOR', 'CALL calo_recon.refresh_job()', 'succeeded', '', now() - interval '400 days', now() - interval '400 days'),
       (0, -6, 0, 'postgres', '$MONITOR', 'SELECT calo_recon.check_health()', 'succeeded', '', now() - interval '400 days', now() - interval '400 days');
SQL
purged_by_operator=$(psql -X -q -At -v ON_ERROR_STOP=1 -U "$OPERATOR" -d postgres \
                       -c "SELECT \"rows\" FROM calo_recon.purge('1 year') WHERE purged = 'cron.job_run_details'")
left_by_operator=$(q postgres -c "SELECT string_agg(runid::text, ',' ORDER BY runid) FROM cron.job_run_details WHERE runid < 0")
purged=$(q postgres -c "SELECT \"rows\" FROM calo_recon.purge('1 year') WHERE purged = 'cron.job_run_details'")
left=$(q postgres -c "SELECT string_agg(runid::text, ',' ORDER BY runid) FROM cron.job_run_details WHERE runid < 0")
q postgres -c "DELETE FROM cron.job_run_details WHERE runid < 0" -c "DROP EXTENSION calo_recon" >/dev/null
echo "pg_cron: purge as the operator: $purged_by_operator old calo_recon job run(s) forgotten, kept $left_by_operator"
echo "pg_cron: purge again as a superuser: $purged forgotten, kept $left"
[ "$purged_by_operator" = 3 ] && [ "$left_by_operator" = "-4,-3,-2" ] \
  || fail "purge of cron.job_run_details by the operator: $purged_by_operator purged, $left_by_operator left"
[ "$purged" = 0 ] && [ "$left" = "-4,-3,-2" ] || fail "purge of cron.job_run_details: $purged purged, $left left"
echo "pg_cron: ok"
