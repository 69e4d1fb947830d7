#!/usr/bin/env bash
# bench/classify_bench.sh: dlc classify against ripgrep (same patterns, no
# validation: a speed bound) on a generated ~1 GiB mixed corpus, one core and
# all cores, alternating for ROUNDS rounds; then bench/classify_engines.cpp
# shows which candidate engine wins (dlc's SIMD pass, Hyperscan literals,
# Hyperscan regexes). Prints medians. Not a test.
#
# Environment:
#   BUILD_DIR  build tree (default build-classify-bench; configured and built here)
#   CORPUS     corpus directory (default /tmp/dlc-classify-corpus; generated when missing)
#   SIZE_MIB   corpus size (default 1024)      ROUNDS  rounds (default 3)
#   ANCHOR     1: also run on the project's anchor dataset (shared/bench/gen_dataset.py)
#
# MB/s "per core" is bytes divided by the CPU time (user + sys) of a one-thread
# run: on a shared machine wall time also measures the neighbours. "All cores"
# is bytes divided by the wall time of a run with one thread per core.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build-classify-bench}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
CORPUS=${CORPUS:-/tmp/dlc-classify-corpus}
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-3}
CORES=$(nproc)

die() { echo "classify_bench: $*" >&2; exit 2; }

command -v rg >/dev/null || apt-get install -y ripgrep >/dev/null || die "cannot install ripgrep"
for peer in gitleaks detect-secrets; do
  command -v $peer >/dev/null ||
    echo "classify_bench: $peer is not packaged for Debian 12 (apt-cache has no candidate); ripgrep is the peer"
done

echo "classify_bench: building dlc in $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DDLC_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" --target dlc -j"$CORES" >/dev/null
DLC=$BUILD_DIR/dlc
ENGINES=$BUILD_DIR/dlc_classify_engines
hs_flags=()
[[ -f /usr/include/hs/hs.h ]] && hs_flags=(-DDLC_HAVE_HYPERSCAN -I/usr/include/hs -lhs)
g++ -std=c++20 -O3 -I"$ROOT" "$ROOT/bench/classify_engines.cpp" -o "$ENGINES" \
  "$BUILD_DIR/libdlc_classify.a" "$BUILD_DIR/libdlc_core.a" "${hs_flags[@]}" -lcrypto -ldeflate -lz -lpthread

if [[ ! -f $CORPUS.complete ]]; then
  python3 "$ROOT/bench/classify_gen.py" "$CORPUS" "$SIZE_MIB"
  touch "$CORPUS.complete"
fi

# ripgrep with patterns equivalent to dlc's types (regex only, nothing validated).
RG_PATTERNS=(
  -e '[1-8]\d{5}(?:18|19|20)\d{9}[\dXx]' -e '1[3-9]\d{9}' -e '\d{13,19}'
  -e '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}' -e '\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}'
  -e '[0-9A-HJ-NP-RTUW-Y]{2}\d{6}[0-9A-HJ-NP-RTUW-Y]{10}' -e '[A-Z]{2}\d{2}[A-Z0-9]{11,30}'
  -e '(?:AKIA|ASIA)[A-Z2-7]{16}' -e 'LTAI[A-Za-z0-9]{12,20}' -e 'AKID[A-Za-z0-9]{32}'
  -e 'eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+' -e '-----BEGIN [A-Z ]*PRIVATE KEY-----'
  -e '(?i)(?:password|passwd|pwd|secret|token|api_key)["'"'"']?\s*[=:]'
)

# run CMD...: prints "wall cpu" (seconds) of one run (exit status ignored:
# dlc exits 1 at --fail-level, rg 1 when nothing matched).
TIMES=$(mktemp)
trap 'rm -f "$TIMES"' EXIT
run() {
  /usr/bin/time -o "$TIMES" -f "%e %U %S" "$@" >/dev/null 2>&1 || true
  awk 'END {printf "%s %.3f\n", $1, $2 + $3}' "$TIMES"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

bench_on() {
  local dir=$1 label=$2
  local bytes files
  bytes=$(find "$dir" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  files=$(find "$dir" -type f | wc -l)
  cat "$dir"/* >/dev/null 2>&1 || true  # warm the page cache: measure CPU, not the disk
  declare -A wall cpu
  local tools=("dlc-1" "dlc-all" "rg-1" "rg-all")
  for tool in "${tools[@]}"; do wall[$tool]=""; cpu[$tool]=""; done
  for ((r = 1; r <= ROUNDS; r++)); do
    for tool in "${tools[@]}"; do
      case $tool in
        dlc-1) out=$(run "$DLC" --quiet classify "$dir" --threads 1) ;;
        dlc-all) out=$(run "$DLC" --quiet classify "$dir" --threads "$CORES") ;;
        rg-1) out=$(run rg -a -z -c --no-config -uuu -j1 "${RG_PATTERNS[@]}" "$dir") ;;
        rg-all) out=$(run rg -a -z -c --no-config -uuu -j"$CORES" "${RG_PATTERNS[@]}" "$dir") ;;
      esac
      wall[$tool]+="${out% *}"$'\n'
      cpu[$tool]+="${out#* }"$'\n'
    done
  done
  echo
  echo "== $label: $files files, $(awk -v b="$bytes" 'BEGIN {printf "%.1f MB", b / 1e6}'), $ROUNDS rounds, medians, $CORES cores"
  printf '%-8s %9s %12s %9s %16s\n' tool "wall s" "MB/s wall" "cpu s" "MB/s per cpu-s"
  declare -A per_core all_cores
  for tool in "${tools[@]}"; do
    local w c
    w=$(printf '%s' "${wall[$tool]}" | median)
    c=$(printf '%s' "${cpu[$tool]}" | median)
    per_core[$tool]=$(awk -v b="$bytes" -v c="$c" 'BEGIN {printf "%.0f", b / 1e6 / c}')
    all_cores[$tool]=$(awk -v b="$bytes" -v w="$w" 'BEGIN {printf "%.0f", b / 1e6 / w}')
    printf '%-8s %9.2f %12s %9.2f %16s\n' "$tool" "$w" "${all_cores[$tool]}" "$c" "${per_core[$tool]}"
  done
  echo "dlc per core (1 thread, cpu):   ${per_core[dlc-1]} MB/s   (target >= 500)"
  echo "dlc all cores (wall):           ${all_cores[dlc-all]} MB/s"
  awk -v d="${per_core[dlc-1]}" -v r="${per_core[rg-1]}" -v da="${all_cores[dlc-all]}" \
    -v ra="${all_cores[rg-all]}" 'BEGIN {
      printf "ratio dlc/ripgrep per core:     %.2f   all cores: %.2f\n", d / r, da / ra }'
}

bench_on "$CORPUS" "mixed classify corpus (bench/classify_gen.py)"

if [[ ${ANCHOR:-0} = 1 ]]; then
  anchor=/tmp/dlc-anchor-dataset
  gen=$ROOT/../shared/bench/gen_dataset.py
  [[ -f $gen ]] || die "no $gen"
  [[ -f $anchor.complete ]] || { python3 "$gen" "$anchor" >/dev/null && touch "$anchor.complete"; }
  bench_on "$anchor" "project anchor dataset (shared/bench/gen_dataset.py)"
fi

echo
echo "== candidate engines on the same text (one core; 256 MB sample of every text kind)"
mapfile -t sample < <(find "$CORPUS" -type f \( -name '*.csv' -o -name '*.jsonl' -o -name '*.log' \
  -o -name '*.sql' \) ! -name 'gbk_*' | sort -t_ -k2 | awk 'NR % 2 == 1')
"$ENGINES" "${sample[@]}" --mib 256
