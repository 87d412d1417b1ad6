#!/usr/bin/env bash
# A failed export_workbook leaves nothing behind in its session: no open
# libxlsxwriter temporary file (the backend's /proc/<pid>/fd count as before)
# and no working folder (.calo_recon_tmp.*), and the same session exports
# again.
#   F1  a workbook that would take more sheets than the limit
#       (calo_recon.workbook_sheet_rows = 1): 54000 as it would add sheet 251,
#       every sheet's file closed (it once ran out of descriptors: "could not add worksheet", then
#       "Too many open files" for every later statement of the session)
#   F2  an export cancelled while it writes its sheets (pg_cancel_backend once
#       the backend holds sheets' temporary files open)
set -euo pipefail
DB=calo_workbook_failure
EXPORT=$CR_ROOT/export
fail() { echo "workbook_failure: $*" >&2; exit 1; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }

cleanup() {
  local rc=$?
  [ -n "${SESSION_PID:-}" ] && kill "$SESSION_PID" 2>/dev/null || true
  rm -rf "$EXPORT/wbfail"
  dropdb --if-exists "$DB" >/dev/null 2>&1 || true
  exit "$rc"
}
trap cleanup EXIT
dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
q -c "CREATE EXTENSION calo_recon"
q <<'SQL'
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, currency, amount, vat, old_balance, new_balance, logged_at)
SELECT format('WBF%07s', i), 'wbf-' || (i % 100), 'DEBIT', 'BHD', 1 + i % 7, 0, 1000, 999 - i % 7,
       timestamptz '2024-03-01 00:00+00' + i * interval '1 minute'
FROM generate_series(1, 60000) i;
SQL

# one session for every step, as a person at psql: its backend's pid first
coproc SESSION { psql -X -q -At -d "$DB" 2>&1; }
SESSION_PID=$SESSION_PID
say() { echo "$1" >&"${SESSION[1]}"; }
# ask SQL: one line back (a statement's one value, or its error)
ask() {
  local line
  say "$1"
  say "SELECT 'END-OF-ANSWER';"
  ANSWER=""
  while read -r -t 300 line <&"${SESSION[0]}"; do
    [ "$line" = END-OF-ANSWER ] && return 0
    ANSWER+="$line"$'\n'
  done
  fail "no answer to: $1"
}
ask "\\set VERBOSITY verbose"
ask "SELECT pg_backend_pid();"; pid=${ANSWER%$'\n'}
# descriptors of the backend into the export folder (a sheet's temporary
# file, the working folder); the relation files PostgreSQL keeps open come and go
fds() { find "/proc/$pid/fd" -lname "$EXPORT/*" 2>/dev/null | wc -l; }
work_folders() { find "$EXPORT/wbfail" -maxdepth 1 -name '.calo_recon_tmp.*' 2>/dev/null | wc -l; }
ask "SELECT calo_recon.export_workbook('wbfail/warm.xlsx');"   # the caches of a first export
before=$(fds)
[ "$before" -eq 0 ] || fail "$before descriptors into the export folder after a finished export"

### F1
ask "SET calo_recon.workbook_sheet_rows = 1;"
ask "SELECT calo_recon.export_workbook('wbfail/w.xlsx');"
grep -q "54000" <<<"$ANSWER" || fail "F1: not 54000: $ANSWER"
grep -q "HINT" <<<"$ANSWER" || fail "F1: no hint: $ANSWER"
[ "$(fds)" -eq "$before" ] || fail "F1: $(fds) descriptors open after the refusal, $before before"
[ "$(work_folders)" -eq 0 ] || fail "F1: a working folder is left"
ask "RESET calo_recon.workbook_sheet_rows;"
ask "SELECT calo_recon.export_workbook('wbfail/w.xlsx');"
grep -qx '[0-9][0-9]*' <<<"${ANSWER%$'\n'}" || fail "F1: the session cannot export after the refusal: $ANSWER"
echo "workbook_failure: F1 ok"

### F2: cancelled once the backend holds sheets' temporary files open
ask "SET calo_recon.workbook_sheet_rows = 1000;"
say "SELECT calo_recon.export_workbook('wbfail/c.xlsx');"
say "SELECT 'END-OF-ANSWER';"
cancelled=no
for _ in $(seq 1 3000); do
  open=$(find "/proc/$pid/fd" -lname "$EXPORT/wbfail/.calo_recon_tmp.*" 2>/dev/null | wc -l)
  if [ "$open" -ge 5 ]; then
    psql -X -q -At -d "$DB" -c "SELECT pg_cancel_backend($pid)" >/dev/null
    cancelled=yes
    break
  fi
  sleep 0.01
done
ANSWER=""
while read -r -t 300 line <&"${SESSION[0]}"; do
  [ "$line" = END-OF-ANSWER ] && break
  ANSWER+="$line"$'\n'
done
[ "$cancelled" = yes ] || fail "F2: the export never held 5 sheets open ($ANSWER)"
grep -q "57014" <<<"$ANSWER" || fail "F2: not cancelled: $ANSWER"
[ "$(fds)" -eq "$before" ] || fail "F2: $(fds) descriptors open after the cancel, $before before"
[ "$(work_folders)" -eq 0 ] || fail "F2: a working folder is left"
ask "RESET calo_recon.workbook_sheet_rows;"
ask "SELECT calo_recon.export_workbook('wbfail/c.xlsx');"
grep -qx '[0-9][0-9]*' <<<"${ANSWER%$'\n'}" || fail "F2: the session cannot export after the cancel: $ANSWER"
echo "workbook_failure: F2 ok"
echo "workbook_failure: ok"
