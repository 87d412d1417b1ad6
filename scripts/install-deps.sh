#!/usr/bin/env bash
# Installs the Debian 12 packages calo_recon builds, tests and benchmarks with.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential clang libclang-rt-14-dev
  postgresql-15 postgresql-client-15 postgresql-server-dev-15
  postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-15-cron
  libpq-dev zlib1g-dev libxlsxwriter-dev
  python3 python3-sklearn python3-pandas python3-openpyxl python3-psycopg2
  # tests only: the workbook and the dashboard page rendered as people see them
  # (test/integration/workbook_render.sh, test/integration/dashboard.sh)
  libreoffice-calc-nogui poppler-utils chromium-headless-shell
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "calo_recon: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian's postgresql-15 package starts a system cluster; we never use it.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
