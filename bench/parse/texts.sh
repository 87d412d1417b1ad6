#!/usr/bin/env bash
# The texts the parse benchmarks time: a generated export (tools/calo_recon_gen)
# and each of its files decompressed, in a stable order.
#   bash bench/parse/texts.sh SEED TRANSACTIONS EXPORT_DIR PLAIN_DIR
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 SEED TRANSACTIONS EXPORT_DIR PLAIN_DIR" >&2; exit 2; }
seed=$1 txns=$2 export_dir=$3 plain_dir=$4
cd "$(dirname "$0")/../.."
make -s -C tools calo_recon_gen >/dev/null
tools/calo_recon_gen --seed "$seed" --transactions "$txns" --out "$export_dir"
mkdir -p "$plain_dir"
i=0
find "$export_dir" -name '*.gz' | sort | while read -r f; do
  i=$((i + 1))
  zcat "$f" >"$plain_dir/$(printf '%06d' "$i").log"
done
