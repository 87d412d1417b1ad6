#!/usr/bin/env bash
# The build a user gets from `make && make install`, apart from the suite's:
#   - the shipped flags have no -Werror (CI's and the suite's do) and no
#     USE_ASSERT_CHECKING; ASSERT_CHECKING=1 compiles the Assert()s in;
#   - the plain C cores compile without the server's include path;
#   - `make install` installs the client loader calo_recon_load;
#   - without libxlsxwriter (XLSXWRITER=no) the module neither links it nor
#     fails to load: export_workbook() raises 0A000 and export_reports() works;
#   - no test probe in the library: each C entry point is an extension function.
# Builds in a copy of the tree, so the suite's own build is left alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOP=$(pwd)
fail() { echo "package_build: $*" >&2; exit 1; }
COPY=$(mktemp -d /tmp/calo_recon_build.XXXXXX)
cleanup() { cluster_destroy 2>/dev/null || true; rm -rf "$COPY"; }
trap cleanup EXIT
tar -cf - Makefile calo_recon.control mk src sql tools | tar -xf - -C "$COPY"
cd "$COPY"
# a user's shell: none of the suite's or CI's switches; the system's
# pg_config, not the one of a throwaway cluster on the PATH
unset WERROR CI ASSERT_CHECKING
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

make -s clean >/dev/null
shipped=$(make -n 2>&1)
grep -q -- "-Wall" <<<"$shipped" || fail "the dry run shows no compile commands"
! grep -qE -- "(^| )-Werror( |$)" <<<"$shipped" || fail "-Werror in the shipped build flags"
! grep -q -- "-DUSE_ASSERT_CHECKING" <<<"$shipped" || fail "assertions on in the shipped build"
grep -qE -- "(^| )-Werror( |$)" <<<"$(WERROR=1 make -n 2>&1)" || fail "WERROR=1 does not make warnings errors"
grep -qE -- "(^| )-Werror( |$)" <<<"$(CI=true make -n 2>&1)" || fail "CI=true does not make warnings errors"

# a PostgreSQL header in a plain C core (src/core/*.c) fails the build
cp src/core/rng.c "$COPY/rng.c.orig"
{ echo '#include "postgres.h"'; cat "$COPY/rng.c.orig"; } >src/core/rng.c
if make -s src/core/rng.o >"$COPY/core.log" 2>&1; then fail "a core compiled with the server's headers in reach"; fi
grep -q "postgres.h" "$COPY/core.log" || { cat "$COPY/core.log"; fail "the core failed for another reason"; }
cp "$COPY/rng.c.orig" src/core/rng.c
make -s src/glue/safe_path_glue.o >/dev/null 2>&1 || fail "the glue does not compile with the server's headers"
make -s clean >/dev/null

make -s ASSERT_CHECKING=1 >"$COPY/assert_build.log" 2>&1 || { tail "$COPY/assert_build.log"; false; } || fail "the ASSERT_CHECKING=1 build failed"
grep -q " U ExceptionalCondition" <<<"$(nm -D calo_recon.so)" || fail "ASSERT_CHECKING=1 compiled no Assert in"
# no test probe in the library: every SQL-callable C entry point it exports
# (pg_finfo_*) is one an install or update script creates
entry_points=$(nm -D --defined-only calo_recon.so | sed -n 's/.* T pg_finfo_//p' | sort -u)
[ -n "$entry_points" ] || fail "no entry points found in calo_recon.so"
created=$(cat sql/calo_recon--*.sql sql/install/*.sql | tr '\n' ' ' |
  grep -o "'MODULE_PATHNAME'[[:space:]]*,[[:space:]]*'[a-z_0-9]*'" | sed "s/.*'\([a-z_0-9]*\)'$/\1/" | sort -u)
not_created=$(comm -23 <(echo "$entry_points") <(echo "$created") | tr '\n' ' ')
[ -z "$not_created" ] || fail "C entry points no install or update script creates (a test probe ships?): $not_created"
make -s clean >/dev/null

make -s XLSXWRITER=no >/dev/null 2>&1 || fail "the build without libxlsxwriter failed"
! grep -q xlsxwriter <<<"$(ldd calo_recon.so)" || fail "XLSXWRITER=no still links libxlsxwriter"
make -s install DESTDIR="$COPY/stage" >/dev/null
loader="$COPY/stage$($PG_CONFIG --bindir)/calo_recon_load"
[ -x "$loader" ] || fail "make install did not install calo_recon_load"
"$loader" --help >/dev/null 2>&1 || [ $? -eq 2 ] || fail "the installed loader does not run"

# the XLSXWRITER=no module in a throwaway cluster
unset CR_ROOT
source "$TOP/scripts/cluster.sh"
cluster_start
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE EXTENSION calo_recon"
state=$(psql -X -At -d postgres -c "DO \$\$ BEGIN PERFORM calo_recon.export_workbook('book.xlsx');
  EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'sqlstate %: %', SQLSTATE, SQLERRM; END \$\$" 2>&1)
grep -q "sqlstate 0A000: export_workbook() is not available: calo_recon was built without libxlsxwriter" <<<"$state" ||
  fail "export_workbook without libxlsxwriter: $state"
[ "$(psql -X -At -d postgres -c "SELECT count(*) FROM calo_recon.export_reports('csv')")" -gt 0 ] ||
  fail "export_reports does not work without libxlsxwriter"
echo "package_build: shipped flags without -Werror, asserts on request, loader installed, xlsx optional"
