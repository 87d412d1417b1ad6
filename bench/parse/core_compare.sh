#!/usr/bin/env bash
# The C parser core alone (bench/parse/core_bench.c), before and after a
# change, on the same texts in one run: builds core_bench from the cores of
# git revision REF (default main) and from the work tree, with the same
# flags, then times them in turns, ROUNDS rounds of REPEAT parses each (the
# side that goes first alternating), so that a busy machine slows both alike.  Prints MB/s of log text per side
# (the best round) and after/before.
#
#   bash bench/parse/core_compare.sh [--ref REF] [--transactions N] [--seed N]
#                                    [--repeat N] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/../.."
REF=main
TXNS=13600
SEED=42
REPEAT=3
ROUNDS=5
while [ $# -gt 0 ]; do
  case "$1" in
    --ref) REF=$2; shift 2 ;;
    --transactions) TXNS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    *) echo "usage: $0 [--ref REF] [--transactions N] [--seed N] [--repeat N] [--rounds N]" >&2; exit 2 ;;
  esac
done

WORK=$(mktemp -d /tmp/calo_recon_core_compare.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
bash bench/parse/texts.sh "$SEED" "$TXNS" "$WORK/export" "$WORK/plain" >/dev/null

# every core is linked in (as the unit tests do), so a split of the parser
# into more files needs no change here
mkdir -p "$WORK/before"
git archive "$REF" src/core | tar -xf - -C "$WORK/before"
build() {  # build OUT CORE_DIR
  cc -O2 -Wall -Wextra -Werror -I"$2" -o "$1" bench/parse/core_bench.c "$2"/*.c -lz -lm
}
build "$WORK/core_before" "$WORK/before/src/core"
build "$WORK/core_after" src/core

echo "bench/parse core_compare: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), seed $SEED, $TXNS transactions, $REF vs work tree"
best_before=""
best_after=""
faster() { python3 -c "import sys; a, b = sys.argv[1], sys.argv[2]; print(b if not a or float(b) < float(a) else a)" "$1" "$2"; }
for round in $(seq "$ROUNDS"); do
  # each side goes first in every other round: neither gains from the order
  sides="before after"
  [ $((round % 2)) -eq 0 ] && sides="after before"
  for side in $sides; do
    out=$("$WORK/core_$side" "$REPEAT" "$WORK"/plain/*.log)
    seconds=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['seconds'])" "$out")
    bytes=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['bytes'])" "$out")
    events=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['events'])" "$out")
    if [ "$side" = before ]; then best_before=$(faster "$best_before" "$seconds"); events_before=$events
    else best_after=$(faster "$best_after" "$seconds"); events_after=$events; fi
  done
done
[ "$events_before" = "$events_after" ] || { echo "core_compare: $events_before events before, $events_after after" >&2; exit 1; }
python3 - "$bytes" "$events_after" "$best_before" "$best_after" <<'PY'
import sys
nbytes, events, before, after = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(f"{nbytes / 1e6:.1f} MB, {events} events, best of the rounds:")
print(f"  before: {before:.4f} s  {nbytes / before / 1e6:7.1f} MB/s")
print(f"  after:  {after:.4f} s  {nbytes / after / 1e6:7.1f} MB/s")
print(f"  after/before speed: {before / after:.3f}")
PY
