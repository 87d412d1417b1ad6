#!/usr/bin/env bash
# Alerts that agree with the reconciliation (issue 8 item 5): a generated
# export (tools/calo_recon_gen, faults on) is loaded with its files in a
# shuffled, seeded order, once file by file with calo_recon.ingest_file, once
# as one folder given to one ingest_file call, and once by
# tools/calo_recon_load given the files in that order.  Rows then
# arrive out of chain order; in the end the open chain and arithmetic alerts
# must be exactly balance_breaks' chain and arithmetic breaks, as
# (txn_id, kind) sets: every break alerted, no alert the walk does not make;
# and the insert-time re-checks alone got there: the reconcile() that each
# ingest ends with found no open alert to resolve.
# Runs with the test cluster env exported (PGHOST, PGPORT, CR_ROOT).
#   SHUFFLE_RUNS="seed:n ..."  override the generated exports
set -uo pipefail
cd "$(dirname "$0")/../.."
TOP=$(pwd)
: "${CR_ROOT:?run with the test cluster env (source scripts/cluster.sh; cluster_start)}"
make -s -C tools PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" calo_recon_gen calo_recon_load >/dev/null || { echo "FAIL build tools"; exit 1; }
RUNS=${SHUFFLE_RUNS:-"7:3000"}
status=0

# check NAME DB: the sets are equal and not trivially so, nothing queued
check() {
  local name=$1 db=$2 row chain arith extra missing by_reconcile queued
  row=$(psql -X -qAt -F' ' -d "$db" -f test/integration/open_alerts_vs_breaks.sql) ||
    { echo "FAIL $name: query"; return 1; }
  read -r chain arith extra missing by_reconcile queued <<<"$row"
  if [ "$chain" -gt 0 ] && [ "$arith" -gt 0 ] && [ "$extra" -eq 0 ] && [ "$missing" -eq 0 ] &&
     [ "$by_reconcile" -eq 0 ] && [ "$queued" -eq 0 ]; then
    echo "ok   $name: open chain+arithmetic alerts = balance_breaks ($chain chain, $arith arithmetic)"
  else
    echo "FAIL $name: $chain chain and $arith arithmetic breaks; $extra open alerts without a break, $missing breaks without an open alert, $by_reconcile resolved by reconcile(), $queued rows left in alert_queue"
    return 1
  fi
}

newdb() {
  dropdb --if-exists "$1" >/dev/null 2>&1
  createdb "$1" && psql -qX -d "$1" -c "CREATE EXTENSION calo_recon" >/dev/null
}

for run in $RUNS; do
  seed=${run%%:*} n=${run##*:} name=shuffled-${run%%:*}-${run##*:}
  dir=$CR_ROOT/import/$name
  rm -rf "$dir"
  tools/calo_recon_gen --seed "$seed" --transactions "$n" --fault-rate 0.03 --out "$dir" 2>/dev/null ||
    { echo "FAIL $name: generator"; status=1; continue; }
  # the log files in a seeded shuffled order (the answer key is not a log)
  mapfile -t files < <(cd "$dir" && find . -type f ! -name 'answer-key.json' | sed 's|^\./||' | sort |
                         shuf --random-source=<(yes "$seed"))
  [ "${#files[@]}" -gt 1 ] || { echo "FAIL $name: only ${#files[@]} files"; status=1; continue; }

  db=calo_shuffled_file
  if newdb "$db"; then
    for f in "${files[@]}"; do
      psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SELECT FROM calo_recon.ingest_file('$name/$f')" >/dev/null ||
        { echo "FAIL $name: ingest_file $f"; status=1; break; }
    done
    check "$name by ingest_file, ${#files[@]} files shuffled" "$db" || status=1
    dropdb "$db"
  else echo "FAIL $name: createdb"; status=1; fi

  # the same files in one ingest_file call of a folder, named so that the
  # walk's byte order is the shuffled order: the call checks all its rows
  # at its end (src/glue/alert_batch_glue.c), so each row meets its true
  # predecessor at once: no chain alert raised and then re-checked away,
  # and nothing left in the queue the trigger filled
  db=calo_shuffled_folder
  folder=$CR_ROOT/import/$name-folder
  rm -rf "$folder" && mkdir -p "$folder"
  for i in "${!files[@]}"; do
    cp "$dir/${files[$i]}" "$folder/$(printf '%04d' "$i")-$(basename "${files[$i]}")"
  done
  if newdb "$db"; then
    if psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "SELECT FROM calo_recon.ingest_file('$name-folder')" >/dev/null; then
      check "$name by one ingest_file of the folder, ${#files[@]} files shuffled" "$db" || status=1
      row=$(psql -X -qAt -F' ' -d "$db" -c "
        SELECT (SELECT count(*) FROM calo_recon.alerts a WHERE a.resolution LIKE 'chain re-checked%'),
               (SELECT count(*) FROM calo_recon.alerts a WHERE a.alert_kind = 'chain'),
               (SELECT count(*) FROM calo_recon.alert_queue)")
      read -r rechecked chain_alerts queued <<<"$row"
      if [ "$rechecked" -eq 0 ] && [ "$chain_alerts" -gt 0 ] && [ "$queued" -eq 0 ]; then
        echo "ok   $name by one ingest_file of the folder: $chain_alerts chain alerts, none re-checked away, queue empty"
      else
        echo "FAIL $name by one ingest_file of the folder: $rechecked of $chain_alerts chain alerts re-checked away, $queued rows left queued"
        status=1
      fi
    else echo "FAIL $name: ingest_file of the folder"; status=1; fi
    dropdb "$db"
  else echo "FAIL $name: createdb"; status=1; fi
  rm -rf "$folder"

  db=calo_shuffled_loader
  if newdb "$db"; then
    # it skips the files that are not logs, with a line on stderr for each
    (cd "$dir" && "$TOP/tools/calo_recon_load" --quiet --dbname "$db" "${files[@]}") >"$dir.load.log" 2>&1 ||
      { echo "FAIL $name: calo_recon_load"; cat "$dir.load.log"; status=1; }
    rm -f "$dir.load.log"
    check "$name by calo_recon_load, ${#files[@]} files shuffled" "$db" || status=1
    dropdb "$db"
  else echo "FAIL $name: createdb"; status=1; fi
  rm -rf "$dir"
done
exit $status
