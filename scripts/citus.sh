# A Citus cluster on one machine for the scale-out tests and benchmarks: a
# coordinator and two workers (three PostgreSQL 15 clusters with
# shared_preload_libraries = citus), running from a private copy of the server
# that holds Citus and calo_recon, so nothing system-wide is touched.
#
#   source scripts/citus.sh
#   citus_start || { echo "skipped: $CITUS_SKIP"; exit 0; }
#   psql -d calo ...            # PGHOST/PGPORT point at the coordinator
#   citus_destroy
#
# Citus is built once from ../shared/vendor/citus (its build.sh, DESTDIR into
# a cache keyed by the archive's sha256, reused by later runs and other
# checkouts) and then copied over each run's private server.  When it cannot
# be built (no archive, no root for its build dependencies, a failed build),
# citus_start returns 1 with the reason in CITUS_SKIP.
#   CITUS_VENDOR   folder with citus-*.tar.gz and build.sh (default ../shared/vendor/citus)
#   CITUS_CACHE    cache root (default /var/tmp/calo_recon-citus)
#   CITUS_WORKERS  number of workers (default 2)
#   CITUS_ROOT     run folder (default a new /tmp/calo_recon-citus.XXXXXX)
# Run from the repository top after `make`.

# shellcheck source=scripts/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"

CITUS_VENDOR=${CITUS_VENDOR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/vendor/citus}
CITUS_CACHE=${CITUS_CACHE:-/var/tmp/calo_recon-citus}
CITUS_WORKERS=${CITUS_WORKERS:-2}
CITUS_SKIP=

# Builds Citus into $CITUS_CACHE/<sha256>/ unless it is there already; sets
# CITUS_BUILT to that folder.  Concurrent callers wait on one lock.
citus_build() {
  local archive sum dest log
  archive=$(ls "$CITUS_VENDOR"/citus-*.tar.gz 2>/dev/null | head -n 1)
  if [ -z "$archive" ] || [ ! -x "$CITUS_VENDOR/build.sh" ]; then
    CITUS_SKIP="no Citus source archive and build.sh in $CITUS_VENDOR"; return 1
  fi
  sum=$(sha256sum "$archive" | cut -c1-16)
  dest=$CITUS_CACHE/$sum
  CITUS_BUILT=$dest
  mkdir -p "$CITUS_CACHE" || { CITUS_SKIP="cannot create the cache $CITUS_CACHE"; return 1; }
  (
    flock 9
    [ -f "$dest/.complete" ] && exit 0
    if [ "$(id -u)" -ne 0 ] && ! dpkg-query -W -f='${Status}' liblz4-dev 2>/dev/null | grep -q 'install ok installed'; then
      echo "Citus build dependencies are missing and installing them needs root"; exit 1
    fi
    rm -rf "$dest" "$dest.tmp"
    mkdir -p "$dest.tmp/build" "$dest.tmp/inst"
    log=$CITUS_CACHE/build-$sum.log
    echo "building Citus from $(basename "$archive") into $dest (once, about two minutes)" >&2
    if ! DESTDIR="$dest.tmp/inst" PG_CONFIG="$CR_SRC_BIN/bin/pg_config" \
         bash "$CITUS_VENDOR/build.sh" "$dest.tmp/build" >"$log" 2>&1; then
      echo "the Citus build failed (log: $log)"; exit 1
    fi
    mv "$dest.tmp/inst" "$dest" && rm -rf "$dest.tmp" && touch "$dest/.complete"
  ) 9>"$CITUS_CACHE/.lock" > "$CITUS_CACHE/.why" || {
    CITUS_SKIP=$(cat "$CITUS_CACHE/.why" 2>/dev/null); CITUS_SKIP=${CITUS_SKIP:-the Citus build failed}; return 1
  }
  return 0
}

# Starts a coordinator and $CITUS_WORKERS workers, creates database $1
# (default calo) on each with Citus, registers the workers, and exports
# PGHOST/PGPORT/PGDATABASE for the coordinator, CITUS_PORTS (coordinator first).
citus_start() {
  local db=${1:-calo} port i dir
  citus_build || return 1
  CITUS_ROOT=${CITUS_ROOT:-$(mktemp -d /tmp/calo_recon-citus.XXXXXX)}
  export CITUS_ROOT
  cr_install_into "$CITUS_ROOT/inst" || { CITUS_SKIP="calo_recon did not install (run make first)"; return 1; }
  cp -a "$CITUS_BUILT/usr/." "$CITUS_ROOT/inst/usr/"
  CITUS_BIN=$CITUS_ROOT/inst/usr/lib/postgresql/$CR_PGVER/bin
  mkdir -p "$CITUS_ROOT/import" "$CITUS_ROOT/export"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$CITUS_ROOT"
  chmod 755 "$CITUS_ROOT"
  CITUS_PORTS=()
  port=$((55000 + RANDOM % 900))
  for ((i = 0; i <= CITUS_WORKERS; i++)); do
    dir=$CITUS_ROOT/node$i
    cr_as_server "$CITUS_BIN/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null || {
      CITUS_SKIP="initdb failed for $dir"; return 1; }
    # Citus nodes reach each other over TCP on the loopback address.
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    {
      # calo_recon on the coordinator from the start: the insert-time alert
      # check of a client's bare INSERT or COPY (README "Scaling out with Citus")
      echo "shared_preload_libraries = 'citus,calo_recon'"
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$dir'"
      echo "fsync = off"
      echo "max_worker_processes = 16"
      echo "max_connections = 100"
      echo "calo_recon.import_directory = '$CITUS_ROOT/import'"
      echo "calo_recon.export_directory = '$CITUS_ROOT/export'"
    } >> "$dir/postgresql.conf"
    cr_as_server "$CITUS_BIN/pg_ctl" -D "$dir" -l "$dir.log" -w start >/dev/null || {
      CITUS_SKIP="node $i did not start (log: $dir.log)"; return 1; }
    CITUS_PORTS+=("$port")
    port=$((port + 1))
  done
  export PGHOST=127.0.0.1 PGPORT=${CITUS_PORTS[0]} PGUSER=postgres PGDATABASE=$db
  export PATH=$CITUS_BIN:$PATH
  for port in "${CITUS_PORTS[@]}"; do
    psql -qX -d postgres -p "$port" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null &&
      psql -qX -d "$db" -p "$port" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION citus" >/dev/null || {
      CITUS_SKIP="Citus did not load on port $port"; return 1; }
  done
  psql -qX -v ON_ERROR_STOP=1 -c "SELECT citus_set_coordinator_host('127.0.0.1', ${CITUS_PORTS[0]})" >/dev/null || return 1
  for port in "${CITUS_PORTS[@]:1}"; do
    psql -qX -v ON_ERROR_STOP=1 -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null || {
      CITUS_SKIP="citus_add_node failed for port $port"; return 1; }
  done
  return 0
}

# Copies files into the import folder the nodes read from.
citus_import() {
  cp -r "$@" "$CITUS_ROOT/import/"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$CITUS_ROOT/import"
  return 0
}

citus_stop() {
  local dir
  [ -n "${CITUS_ROOT:-}" ] || return 0
  for dir in "$CITUS_ROOT"/node*/; do
    [ -f "$dir/postmaster.pid" ] && cr_as_server "$CITUS_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1
  done
  return 0
}

citus_destroy() {
  citus_stop
  [ -n "${CITUS_ROOT:-}" ] && rm -rf "$CITUS_ROOT"
  return 0
}
