# Throwaway PostgreSQL 15 cluster with calo_recon installed into a private copy
# of the server (like PostgreSQL's own "make check"), so nothing system-wide is
# touched and several checkouts can test side by side.
#
#   source scripts/cluster.sh
#   cluster_start [extra postgresql.conf line ...]   # sets PGHOST PGPORT PGUSER PATH
#   ...
#   cluster_stop
#
# CR_ROOT (default: a new /tmp/calo_recon.XXXXXX) holds inst/, data/, import/,
# export/ and the server log.  Run from the repository top after `make`.

CR_PGVER=15
CR_SRC_BIN=/usr/lib/postgresql/$CR_PGVER
CR_SRC_SHARE=/usr/share/postgresql/$CR_PGVER

# Server programs run from / so that a checkout only root can enter is no problem.
cr_as_server() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# A private copy of the server under $1 with calo_recon installed into it.
cr_install_into() {
  local inst=$1
  mkdir -p "$inst/usr/lib/postgresql" "$inst/usr/share/postgresql"
  rm -rf "$inst/usr/lib/postgresql/$CR_PGVER" "$inst/usr/share/postgresql/$CR_PGVER"
  cp -a "$CR_SRC_BIN" "$inst/usr/lib/postgresql/"
  cp -a "$CR_SRC_SHARE" "$inst/usr/share/postgresql/"
  # The system pg_config, never a private copy's that an enclosing cluster put
  # on the PATH: a copy reports paths under its own folder.
  make -s install DESTDIR="$inst" PG_CONFIG="$CR_SRC_BIN/bin/pg_config" >/dev/null
  # the test probe (never installed; `make installcheck` hands it to the
  # server), built here where the server's headers are: the private copy has
  # none (a copy of the shipped files alone has no test/)
  if [ -d test/probe ]; then
    make -s -C test/probe PG_CONFIG="$CR_SRC_BIN/bin/pg_config" >/dev/null
  fi
}

cluster_install() {
  CR_ROOT=${CR_ROOT:-$(mktemp -d /tmp/calo_recon.XXXXXX)}
  export CR_ROOT
  CR_INST=$CR_ROOT/inst
  cr_install_into "$CR_INST"
  export CR_BIN=$CR_INST/usr/lib/postgresql/$CR_PGVER/bin
}

cluster_start() {
  cluster_install
  local port
  port=${CR_PORT:-$((54000 + RANDOM % 1000))}
  mkdir -p "$CR_ROOT/import" "$CR_ROOT/export" "$CR_ROOT/sock"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$CR_ROOT"
  chmod 755 "$CR_ROOT"
  cr_as_server "$CR_BIN/initdb" -D "$CR_ROOT/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  {
    echo "listen_addresses = ''"
    echo "port = $port"
    echo "unix_socket_directories = '$CR_ROOT/sock'"
    echo "fsync = off"
    echo "max_worker_processes = 16"
    echo "calo_recon.import_directory = '$CR_ROOT/import'"
    echo "calo_recon.export_directory = '$CR_ROOT/export'"
    for line in "$@"; do echo "$line"; done
  } >> "$CR_ROOT/data/postgresql.conf"
  cr_as_server "$CR_BIN/pg_ctl" -D "$CR_ROOT/data" -l "$CR_ROOT/server.log" -w start >/dev/null
  export PGHOST=$CR_ROOT/sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres
  export PATH=$CR_BIN:$PATH
}

cluster_stop() {
  [ -n "${CR_ROOT:-}" ] && [ -d "$CR_ROOT/data" ] || return 0
  cr_as_server "$CR_BIN/pg_ctl" -D "$CR_ROOT/data" -m fast -w stop >/dev/null 2>&1 || true
}

cluster_destroy() {
  cluster_stop
  [ -n "${CR_ROOT:-}" ] && rm -rf "$CR_ROOT"
}

# Copies files into the import folder where the server may read them.
cluster_import() {
  cp -r "$@" "$CR_ROOT/import/"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$CR_ROOT/import"
  return 0
}
