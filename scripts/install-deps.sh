#!/usr/bin/env bash
# Installs the Debian 12 packages calo_recon needs, by purpose:
#   bash scripts/install-deps.sh            runtime + build (a server that builds calo_recon)
#   bash scripts/install-deps.sh --runtime  runtime only (a server that installs a built package)
#   bash scripts/install-deps.sh --test     + what the test suite needs (scripts/test.sh)
#   bash scripts/install-deps.sh --bench    + what the benchmarks' peers need
#   bash scripts/install-deps.sh --list     print the packages of the chosen groups and stop
# Installs only what is missing and says which. Run it as root; as another
# user it uses sudo when there is one and otherwise prints the apt-get command
# to run as root.
set -euo pipefail

RUNTIME=(postgresql-15 postgresql-client-15 libpq5 zlib1g libxlsxwriter4)
BUILD=(build-essential postgresql-server-dev-15 libpq-dev zlib1g-dev libxlsxwriter-dev)
# clang: unit tests under sanitizers and fuzzing; pgTAP and pg_cron: their
# suites; Python: scikit-learn parity and workbook checks, YAML: the
# postgres_exporter recipe (test/integration/ops_health.sh); debhelper,
# postgresql-server-dev-all (pg_buildext), dpkg-dev, fakeroot: the .deb test;
# LibreOffice's headless Calc, poppler and headless Chromium: the workbook and
# the dashboard page rendered as people see them (workbook_render.sh, dashboard.sh);
# Carlito, metric-compatible with Calibri, so Calc lays the workbook out as Excel would
TEST=(clang libclang-rt-14-dev
      postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-cron
      python3 python3-sklearn python3-pandas python3-openpyxl python3-psycopg2 python3-yaml
      debhelper postgresql-server-dev-all dpkg-dev fakeroot
      libreoffice-calc-nogui fonts-crosextra-carlito poppler-utils chromium-headless-shell)
BENCH=(python3 python3-sklearn python3-pandas python3-psycopg2)

groups=(runtime build)
list_only=false
for arg in "$@"; do
  case $arg in
    --runtime) groups=(runtime) ;;
    --test) groups+=(test) ;;
    --bench) groups+=(bench) ;;
    --list) list_only=true ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

wanted=()
for g in "${groups[@]}"; do
  case $g in
    runtime) wanted+=("${RUNTIME[@]}") ;;
    build) wanted+=("${BUILD[@]}") ;;
    test) wanted+=("${TEST[@]}") ;;
    bench) wanted+=("${BENCH[@]}") ;;
  esac
done
if $list_only; then printf '%s\n' "${wanted[@]}" | awk '!seen[$0]++'; exit 0; fi

missing=()
for p in $(printf '%s\n' "${wanted[@]}" | awk '!seen[$0]++'); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install-deps: missing ${missing[*]}; as root, run:" >&2
    echo "  apt-get update && apt-get install --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi
echo "calo_recon (${groups[*]}): installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
# Debian's postgresql-15 package starts a system cluster; calo_recon's scripts never use it.
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
