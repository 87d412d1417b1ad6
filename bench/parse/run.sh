#!/usr/bin/env bash
# Parse + ingest throughput of calo_recon against a plain Python regex peer.
#
#   bash bench/parse/run.sh [--transactions N] [--seed N] [--repeat N]
#
# Generates an export with tools/calo_recon_gen (default 13,600 transactions,
# about 82k events: the size of the real export), starts a throwaway cluster
# and times, on the same log texts:
#   (a) the peer: bench/parse/peer.py, gzip + re into lists of dicts and a
#       pandas DataFrame, as the seed prototype did (and its re part alone),
#       plus its parse_log twin: every event to a dict with kind and body;
#   (b) ours, parse only: SELECT count(*) FROM calo_recon.parse_log(t) over
#       the decompressed texts preloaded into a table (no gzip, no file I/O),
#       the same with read_log_file() of the gzip files, and the C parser
#       core alone (bench/parse/core_bench.c: lp_parse over texts in memory);
#   (c) ours, calo_recon.ingest_file of the whole gzip tree (read, gunzip,
#       parse, store, reconcile) into a fresh database.
# Prints MB/s of log text and transactions/s for each, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
TXNS=13600
SEED=42
REPEAT=3
while [ $# -gt 0 ]; do
  case "$1" in
    --transactions) TXNS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    *) echo "usage: $0 [--transactions N] [--seed N] [--repeat N]" >&2; exit 2 ;;
  esac
done

make -s >/dev/null
source scripts/cluster.sh
trap cluster_destroy EXIT
cluster_start >/dev/null
export_dir=$CR_ROOT/import/bench
plain_dir=$CR_ROOT/import/bench-plain
bash bench/parse/texts.sh "$SEED" "$TXNS" "$export_dir" "$plain_dir"
[ "$(id -u)" -eq 0 ] && chown -R postgres "$CR_ROOT/import"
echo "bench/parse: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), seed $SEED, $TXNS transactions"
cc -O2 -Wall -Wextra -Werror -Isrc/core -o "$CR_ROOT/core_bench" bench/parse/core_bench.c src/core/*.c -lz -lm
/usr/bin/python3 bench/parse/bench.py "$export_dir" bench "$plain_dir" "$REPEAT" "$CR_ROOT/core_bench"
