#!/usr/bin/env bash
# Export races and hostile export folders, each driven step by step:
# a second session holds an ACCESS EXCLUSIVE lock on a table the export reads,
# the export is seen waiting for it in pg_stat_activity, the folder is
# tampered with from the shell by an unprivileged user (nobody) who may write
# in the export folder, then the lock is released. Checked: no file outside
# the export folder is touched, the reports land in the folder they were
# opened in, nothing temporary is left behind.
#   H1  a FIFO at .calo_recon_manifest, there before or put there mid-export:
#       42809 at once, no hang
#   P1  the workbook's temporaries swapped for symlinks to an outside file
#   P2  a hard link to an outside file planted at the manifest's old temporary name
#   P3  the export folder swapped for a symlink to an outside folder mid-export
#   P3M the export folder moved out of the export directory mid-export
#   C1  an export killed (SIGKILL) mid-way: the next export removes its
#       temporaries; one terminated mid-way leaves none; the working folder of
#       a live export (another database) is left alone
#   CASES="P1 P3"  runs only some of them
set -euo pipefail
trap '' PIPE
CASES=${CASES:-H1 P1 P2 P3 P3M C1 C1T C1L}
want() { [[ " $CASES " == *" $1 "* ]]; }
DB=calo_export_races
EXPORT=$CR_ROOT/export
RACES=$EXPORT/races
OUTSIDE=$(mktemp -d /tmp/calo_outside.XXXXXX)
GUARD=60   # seconds before a hung export counts as a failure (H1 on the old code)
fail() { echo "export_races: $*" >&2; exit 1; }
q() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }
as_nobody() { runuser -u nobody -- "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "export_races: needs root (runs the attacker as nobody)"; exit 1; }

cleanup() {
  local rc=$?
  [ -n "${BLOCKER_PID:-}" ] && kill "$BLOCKER_PID" 2>/dev/null || true
  # unblock an export stuck opening a FIFO (the old code), so the cluster can stop
  for f in "$RACES"/*/.calo_recon_manifest; do
    [ -p "$f" ] && python3 -c 'import os, sys; os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK)' "$f" 2>/dev/null || true
  done
  rm -rf "$OUTSIDE" "$OUTSIDE".*.out "$RACES"
  dropdb --if-exists "$DB" >/dev/null 2>&1
  dropdb --if-exists "${DB}_2" >/dev/null 2>&1
  exit "$rc"
}
trap cleanup EXIT

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
q -c "CREATE EXTENSION calo_recon"
q <<'SQL'
INSERT INTO calo_recon.transactions
    (txn_id, user_id, txn_type, source, action, currency, amount, vat,
     old_balance, new_balance, logged_at)
SELECT format('01HRACE%019s', g), 'race-user-' || (g % 7), 'DEBIT', 'PAYMENT', 'TEST', 'BHD',
       1, 0, 100 - g, 99 - g, '2024-03-01 00:00:00+00'::timestamptz + g * interval '1 minute'
FROM generate_series(1, 200) g;
SQL

# the races folder: writable by anyone, like a shared drop folder
mkdir -p "$RACES"
chown postgres "$RACES"
chmod 0777 "$RACES" "$OUTSIDE"

# folder NAME: created by the server, then opened to everyone like its parent
new_folder() {
  q -c "SELECT count(*) FROM calo_recon.export_reports('races/$1')" >/dev/null
  rm -f "$RACES/$1"/*.csv "$RACES/$1/.calo_recon_manifest"
  chmod 0777 "$RACES/$1"
}

# lock_table TABLE [DB]: a second session holds ACCESS EXCLUSIVE on it until unlock
# (its backend's pid in LOCKER_BACKEND)
lock_table() {
  coproc BLOCKER { psql -X -q -At -v ON_ERROR_STOP=1 -d "${2:-$DB}" 2>>"$OUTSIDE.blocker.out"; }
  BLOCKER_PID=$BLOCKER_PID
  echo "BEGIN; LOCK TABLE calo_recon.$1 IN ACCESS EXCLUSIVE MODE; SELECT 'locked ' || pg_backend_pid();" >&"${BLOCKER[1]}"
  local line
  read -r -t "$GUARD" line <&"${BLOCKER[0]}" || fail "could not lock $1"
  [[ "$line" == "locked "* ]] || fail "lock session said: $line"
  LOCKER_BACKEND=${line#locked }
}
unlock_table() {
  echo "COMMIT;" >&"${BLOCKER[1]}"
  exec {BLOCKER[1]}>&-
  wait "$BLOCKER_PID" 2>/dev/null || true
  BLOCKER_PID=
}

# start_export NAME SQL [DB]: runs SQL in the background as application NAME
start_export() {
  PGAPPNAME=$1 timeout "$GUARD" psql -X -q -At -d "${3:-$DB}" -c "$2" >"$OUTSIDE.$1.out" 2>&1 &
  EXPORT_JOB=$!
}
# wait_for_lock_wait NAME: polls until the export waits for the lock; prints its pid
wait_for_lock_wait() {
  local i pid
  for i in $(seq 1 600); do
    pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1' AND wait_event_type = 'Lock'")
    [ -n "$pid" ] && { echo "$pid"; return 0; }
    kill -0 "$EXPORT_JOB" 2>/dev/null || fail "$1 ended before waiting: $(cat "$OUTSIDE.$1.out")"
    sleep 0.1
  done
  fail "$1 never waited for the lock"
}
finish_export() {  # finish_export NAME: waits for it (in this shell), its output in $out
  wait "$EXPORT_JOB" || true
  out=$(cat "$OUTSIDE.$1.out")
}
# nothing but the planted files may exist outside
outside_untouched() {
  local what=$1; shift
  local found
  found=$(cd "$OUTSIDE" && find . -mindepth 1 -newer "$OUTSIDE/.stamp" ! -name '.stamp' "$@" | sort)
  [ -z "$found" ] || fail "$what: written outside the export folder: $found"
}
no_temporaries() {  # no_temporaries FOLDER WHAT
  local left
  left=$(cd "$1" && find . -mindepth 1 -maxdepth 1 -name '.*' ! -name .calo_recon_manifest)
  [ -z "$left" ] || fail "$2: temporaries left in $1: $left"
}

if want H1; then
### H1: a FIFO where the manifest belongs is refused at once (42809), never opened blocking
new_folder h1
mkfifo "$RACES/h1/.calo_recon_manifest"
chown postgres "$RACES/h1/.calo_recon_manifest"
out=$(timeout "$GUARD" psql -X -q -At -d "$DB" \
      -c "SELECT count(*) FROM calo_recon.export_reports('races/h1')" 2>&1) && rc=0 || rc=$?
[ "$rc" -ne 124 ] || fail "H1: export_reports hung on a FIFO manifest (killed after ${GUARD} s)"
grep -q 'is not a regular file' <<<"$out" || fail "H1: expected 42809, got: $out"
state=$(q -c "DO \$\$ BEGIN PERFORM calo_recon.export_workbook('races/h1/book.xlsx');
              EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'STATE %', SQLSTATE; END \$\$" 2>&1 || true)
grep -q "STATE 42809" <<<"$state" || fail "H1: workbook: expected 42809, got: $state"
[ -p "$RACES/h1/.calo_recon_manifest" ] || fail "H1: the FIFO was replaced"
no_temporaries "$RACES/h1" H1

# the same FIFO put there while the export waits, after its first look
rm "$RACES/h1/.calo_recon_manifest"
lock_table transactions
start_export h1race "SELECT count(*) FROM calo_recon.export_reports('races/h1')"
wait_for_lock_wait h1race >/dev/null
as_nobody mkfifo "$RACES/h1/.calo_recon_manifest"
unlock_table
finish_export h1race
grep -q 'is not a regular file' <<<"$out" || fail "H1: FIFO planted mid-export: expected 42809, got: $out"
no_temporaries "$RACES/h1" "H1 mid-export"
echo "export_races: H1 ok"
fi

touch "$OUTSIDE/.stamp"

if want P1; then
### P1: the workbook's temporaries are swapped for symlinks while the export waits
new_folder p1
echo "victim" > "$OUTSIDE/victim.xlsx"
chown nobody "$OUTSIDE/victim.xlsx"; chmod 0666 "$OUTSIDE/victim.xlsx"
touch -d '2000-01-01' "$OUTSIDE/victim.xlsx"
lock_table transactions
start_export p1 "SELECT calo_recon.export_workbook('races/p1/book.xlsx')"
wait_for_lock_wait p1 >/dev/null
# every temporary-looking entry becomes a symlink to the victim; entries the
# attacker may not move (the private working folder) stay
as_nobody sh -c 'cd "$1" && for f in .??*; do
    [ "$f" = .calo_recon_manifest ] && continue
    mv "$f" "moved$f" 2>/dev/null && ln -s "$2" "$f"
  done; true' sh "$RACES/p1" "$OUTSIDE/victim.xlsx"
unlock_table
finish_export p1
echo victim | cmp -s - "$OUTSIDE/victim.xlsx" || fail "P1: the outside file was overwritten ($out)"
outside_untouched P1
if grep -qx '[0-9][0-9]*' <<<"$out"; then
  [ -f "$RACES/p1/book.xlsx" ] && [ ! -L "$RACES/p1/book.xlsx" ] || fail "P1: no workbook in the folder"
else
  grep -q ERROR <<<"$out" || fail "P1: $out"
fi
echo "export_races: P1 ok ($out)"
fi

if want P2; then
### P2: a hard link to an outside file at the manifest's (old, predictable) temporary name
new_folder p2
echo "victim" > "$OUTSIDE/victim.txt"
chown nobody "$OUTSIDE/victim.txt"; chmod 0666 "$OUTSIDE/victim.txt"
touch -d '2000-01-01' "$OUTSIDE/victim.txt"
lock_table transactions
start_export p2 "SELECT count(*) FROM calo_recon.export_reports('races/p2')"
pid=$(wait_for_lock_wait p2)
as_nobody ln "$OUTSIDE/victim.txt" "$RACES/p2/.calo_recon_manifest.$pid.tmp"
unlock_table
finish_export p2
echo victim | cmp -s - "$OUTSIDE/victim.txt" || fail "P2: the outside file got the manifest text ($out)"
outside_untouched P2
[ "$out" = 10 ] || fail "P2: export failed: $out"
[ -f "$RACES/p2/.calo_recon_manifest" ] && [ "$(stat -c %h "$RACES/p2/.calo_recon_manifest")" = 1 ] \
  || fail "P2: the manifest is not a file of its own"
rm -f "$RACES/p2/.calo_recon_manifest.$pid.tmp"
no_temporaries "$RACES/p2" P2
echo "export_races: P2 ok"
fi

if want P3; then
### P3: the folder is swapped for a symlink after the first temporaries exist
# (balance_errors is first read by the fifth report, so four are written by then)
new_folder p3
mkdir "$OUTSIDE/dest"; chmod 0777 "$OUTSIDE/dest"
lock_table balance_errors
start_export p3 "SELECT count(*) FROM calo_recon.export_reports('races/p3')"
wait_for_lock_wait p3 >/dev/null
as_nobody sh -c 'cd "$1" && mv p3 p3.moved && ln -s "$2" p3 &&
  for f in p3.moved/.??*; do mv "$f" "$2/" 2>/dev/null; done; true' sh "$RACES" "$OUTSIDE/dest"
unlock_table
finish_export p3
reports=$(find "$OUTSIDE/dest" -name '*.csv' -o -name '.calo_recon_manifest' | sort)
[ -z "$reports" ] || fail "P3: reports published outside the export folder: $reports ($out)"
if [ "$out" = 10 ]; then
  [ "$(ls "$RACES/p3.moved"/*.csv | wc -l)" = 10 ] || fail "P3: reports missing from the folder"
else
  grep -q ERROR <<<"$out" || fail "P3: $out"
fi
echo "export_races: P3 ok ($out)"
fi

if want P3M; then
### P3M: the folder itself is moved out of the export directory mid-export:
# nothing is published there and no temporary is left there
new_folder p3m
lock_table balance_errors
start_export p3m "SELECT count(*) FROM calo_recon.export_reports('races/p3m')"
wait_for_lock_wait p3m >/dev/null
as_nobody mv "$RACES/p3m" "$OUTSIDE/p3m"
unlock_table
finish_export p3m
left=$(cd "$OUTSIDE/p3m" && find . -mindepth 1 | sort)
[ -z "$left" ] || fail "P3M: written into the folder moved outside: $left ($out)"
grep -q 'was moved out of calo_recon.export_directory' <<<"$out" || fail "P3M: expected 42501, got: $out"
echo "export_races: P3M ok"
fi

if want C1; then
### C1: an export killed mid-way leaves temporaries; the next export removes them
new_folder c1
lock_table balance_errors
start_export c1 "SELECT count(*) FROM calo_recon.export_reports('races/c1')"
pid=$(wait_for_lock_wait c1)
[ -n "$(cd "$RACES/c1" && find . -mindepth 1 -name '.*' ! -name .calo_recon_manifest)" ] \
  || fail "C1: no temporaries while the export waits (nothing to test)"
kill -KILL "$pid"
wait "$EXPORT_JOB" 2>/dev/null || true
unlock_table 2>/dev/null || true
# the postmaster ends every session after a killed backend and reinitializes:
# ready once a new session connects and the lock holder is gone
for i in $(seq 1 600); do
  [ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE pid = $LOCKER_BACKEND" 2>/dev/null)" = 0 ] && break
  sleep 0.1
done
# and temporaries as calo_recon 1.1 named them, of a pid that is no process
dead=$(( $(cat /proc/sys/kernel/pid_max) - 1 ))
while kill -0 "$dead" 2>/dev/null; do dead=$((dead - 1)); done
for f in ".transactions.csv.$dead.1.tmp" ".calo_recon_manifest.$dead.tmp"; do
  echo old > "$RACES/c1/$f"; chown postgres "$RACES/c1/$f"
done
echo theirs > "$RACES/c1/.notes.$dead.1.tmp"; chown nobody "$RACES/c1/.notes.$dead.1.tmp"
[ "$(q -c "SELECT count(*) FROM calo_recon.export_reports('races/c1')")" = 10 ] || fail "C1: export after the kill failed"
[ -f "$RACES/c1/.notes.$dead.1.tmp" ] || fail "C1: removed a file the server does not own"
rm "$RACES/c1/.notes.$dead.1.tmp"
no_temporaries "$RACES/c1" C1
echo "export_races: C1 ok"
fi

if want C1T; then
### C1T: terminated (FATAL: no error handler runs); its temporaries go at once
[ -d "$RACES/c1" ] || new_folder c1
lock_table balance_errors
start_export c1t "SELECT count(*) FROM calo_recon.export_reports('races/c1')"
pid=$(wait_for_lock_wait c1t)
q -c "SELECT pg_terminate_backend($pid, 60000)" >/dev/null
wait "$EXPORT_JOB" 2>/dev/null || true
unlock_table
no_temporaries "$RACES/c1" "C1T terminated"
echo "export_races: C1T ok"
fi

if want C1L; then
### C1L: a live export of another database keeps its working folder while this
# database's export (not serialized with it) cleans up the same folder
createdb "${DB}_2"
psql -X -q -d "${DB}_2" -c "CREATE EXTENSION calo_recon"
[ -d "$RACES/c1" ] || new_folder c1
lock_table balance_errors "${DB}_2"
start_export c1live "SELECT count(*) FROM calo_recon.export_reports('races/c1')" "${DB}_2"
wait_for_lock_wait c1live >/dev/null
[ "$(q -c "SELECT count(*) FROM calo_recon.export_reports('races/c1')")" = 10 ] || fail "C1L: export beside a live one failed"
unlock_table
finish_export c1live
[ "$out" = 10 ] || fail "C1L: the live export lost its working folder: $out"
no_temporaries "$RACES/c1" "C1L live"
echo "export_races: C1L ok"
fi

echo "export_races: ok"
