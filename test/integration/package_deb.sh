#!/usr/bin/env bash
# The Debian packages as a DBA installs them: dpkg-buildpackage (pg_buildext)
# builds postgresql-15-calo-recon and calo-recon-tools from a clean copy of the
# tree; both are installed into the system, a fresh cluster of the system's
# own PostgreSQL 15 creates the extension, runs a smoke query, loads the
# samples with the packaged calo_recon_load and passes `make installcheck`;
# then both packages are purged, leaving the machine as it was.
# Skipped (with the reason) where the packaging tools are missing
# (scripts/install-deps.sh --test installs them) or a calo_recon package is
# already installed (this test must not replace a DBA's install).
set -euo pipefail
cd "$(dirname "$0")/../.."
TOP=$(pwd)
fail() { echo "package_deb: $*" >&2; exit 1; }
skip() { echo "package_deb: SKIPPED: $*"; exit 0; }
PACKAGES=(postgresql-15-calo-recon calo-recon-tools)
PGBIN=/usr/lib/postgresql/15/bin

for tool in dpkg-buildpackage pg_buildext dh fakeroot; do
  command -v "$tool" >/dev/null || skip "$tool is missing (bash scripts/install-deps.sh --test installs the packaging tools)"
done
[ "$(id -u)" -eq 0 ] || skip "installing a .deb needs root"
for p in "${PACKAGES[@]}"; do
  ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    skip "$p is already installed; this test installs and purges its own build"
done

# one version everywhere it is written
ext_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" calo_recon.control)
deb_version=$(dpkg-parsechangelog -l debian/changelog -S Version)
meta_version=$(python3 -c "import json; print(json.load(open('META.json'))['version'])")
[ "$deb_version" = "$ext_version.0" ] || fail "debian/changelog has $deb_version, calo_recon.control $ext_version"
[ "$meta_version" = "$ext_version.0" ] || fail "META.json has $meta_version, calo_recon.control $ext_version"

WORK=$(mktemp -d /tmp/calo_recon_deb.XXXXXX)
DATA=$WORK/cluster
installed=false
cleanup() {
  [ -f "$DATA/postmaster.pid" ] && (cd / && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1)
  if $installed; then
    apt-get -o DPkg::Lock::Timeout=300 purge -y -qq "${PACKAGES[@]}" >/dev/null 2>&1 ||
      echo "package_deb: could not purge ${PACKAGES[*]}" >&2
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# build from a clean copy: dpkg-buildpackage writes the .debs beside the tree
SRC=$WORK/calo-recon-$deb_version
mkdir -p "$SRC"
git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C "$SRC"
(cd "$SRC" && env -u WERROR -u CI -u ASSERT_CHECKING -u PG_CONFIG \
   PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
   dpkg-buildpackage -us -uc -b >"$WORK/build.log" 2>&1) ||
  { tail -n 40 "$WORK/build.log"; fail "dpkg-buildpackage failed"; }
server_deb=$WORK/postgresql-15-calo-recon_${deb_version}_$(dpkg --print-architecture).deb
tools_deb=$WORK/calo-recon-tools_${deb_version}_$(dpkg --print-architecture).deb
[ -f "$server_deb" ] && [ -f "$tools_deb" ] || fail "the two packages were not built: $(ls "$WORK")"
server_files=$(dpkg-deb -c "$server_deb")
tools_files=$(dpkg-deb -c "$tools_deb")
grep -q "/usr/lib/postgresql/15/lib/calo_recon.so$" <<<"$server_files" || fail "no calo_recon.so in the server package"
grep -q "/usr/share/postgresql/15/extension/calo_recon--1.0--1.1.sql$" <<<"$server_files" || fail "no update chain in the server package"
grep -q "/usr/bin/calo_recon_load$" <<<"$tools_files" || fail "no calo_recon_load in the tools package"
! grep -q "calo_recon_load" <<<"$server_files" || fail "the loader is in the server package too"
! grep -q "calo_recon_probe" <<<"$server_files$tools_files" || fail "the test probe is in a package"

installed=true
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$server_deb" "$tools_deb" >"$WORK/install.log" 2>&1 ||
  { tail -n 20 "$WORK/install.log"; fail "the packages do not install"; }

# a fresh cluster of the system's server, with calo_recon's folders
mkdir -p "$WORK/import" "$WORK/export" "$WORK/sock"
chown -R postgres "$WORK"
chmod 755 "$WORK"
(cd / && runuser -u postgres -- "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null)
port=$((55000 + RANDOM % 1000))
cat >>"$DATA/postgresql.conf" <<CONF
listen_addresses = ''
port = $port
unix_socket_directories = '$WORK/sock'
fsync = off
calo_recon.import_directory = '$WORK/import'
calo_recon.export_directory = '$WORK/export'
CONF
(cd / && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -l "$WORK/server.log" -w start >/dev/null)
export PGHOST=$WORK/sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres
q() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

q -c "CREATE EXTENSION calo_recon"
[ "$(q -c "SELECT extversion FROM pg_extension WHERE extname = 'calo_recon'")" = "$ext_version" ] || fail "not version $ext_version"
[ "$(q -c "SELECT pg_catalog.count(*) FROM pg_catalog.pg_available_extension_versions WHERE name = 'calo_recon'")" -ge 3 ] ||
  fail "the packaged versions are not all available"
/usr/bin/calo_recon_load --quiet test/data/samples/balance-sync-logs >"$WORK/load.log" 2>&1 ||
  { cat "$WORK/load.log"; fail "the packaged calo_recon_load failed"; }
expected=$(python3 -c "import json; print(len(json.load(open('test/data/samples/answer-key.json'))['transactions']))" 2>/dev/null || echo "")
got=$(q -c "SELECT pg_catalog.count(*) FROM calo_recon.transactions")
[ "$got" -gt 0 ] || fail "no transactions after loading the samples"
[ -z "$expected" ] || [ "$got" = "$expected" ] || fail "$got transactions loaded, the answer key has $expected"
q -c "SELECT users FROM calo_recon.reconcile()" >/dev/null || fail "reconcile() failed"

# installcheck against the packaged module, from the clean copy
(cd "$SRC" && env -u WERROR -u CI -u ASSERT_CHECKING make -s installcheck PG_CONFIG=$PGBIN/pg_config \
   >"$WORK/installcheck.log" 2>&1) ||
  { tail -n 40 "$WORK/installcheck.log"; [ -f "$SRC/regression.diffs" ] && head -n 100 "$SRC/regression.diffs"
    fail "make installcheck failed on the packaged module"; }
[ "$(grep -c "All [0-9]* tests passed" "$WORK/installcheck.log")" = 2 ] || fail "not both suites passed"
[ -z "$(ls -A "$WORK/import" "$WORK/export" | grep -v ':$' | grep -v '^$')" ] || fail "installcheck left files behind"

(cd / && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null)
apt-get -o DPkg::Lock::Timeout=300 purge -y -qq "${PACKAGES[@]}" >/dev/null 2>&1 || fail "the packages do not purge"
installed=false
[ ! -e /usr/lib/postgresql/15/lib/calo_recon.so ] && [ ! -e /usr/bin/calo_recon_load ] || fail "files left after the purge"
echo "package_deb: built $(basename "$server_deb") and $(basename "$tools_deb"), installed, smoke and installcheck passed, purged"
