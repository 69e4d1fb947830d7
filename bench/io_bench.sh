#!/usr/bin/env bash
# bench/io_bench.sh: dlc::io::Engine against fio on the same direct-io loop
# device. Creates a fully allocated file (2 GiB by default), attaches it with
# `losetup --direct-io=on`, and alternates, for ROUNDS rounds, fio
# (io_uring, 1 MiB, O_DIRECT, iodepth 32) and dlc_io_bench (the same shape
# through dlc::io::Engine) for sequential write and read-back; prints the
# median GB/s of each and the ratio dlc/fio. Needs root (losetup).
#
# Environment:
#   BUILD_DIR  build tree holding bench/dlc_io_bench (default: build-io; built
#              there with -DDLC_BUILD_BENCH=ON when missing)
#   SIZE       device size (default 2G)      ROUNDS  rounds (default 3)
#   BENCH_DIR  where the backing file goes (default /var/tmp: a real disk, not tmpfs)
#   MIN_RATIO  if set (e.g. 0.95), exit 1 when a dlc/fio ratio is below it
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-build-io}
[[ $BUILD_DIR = /* ]] || BUILD_DIR=$ROOT/$BUILD_DIR
SIZE=${SIZE:-2G}
ROUNDS=${ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
BENCH=$BUILD_DIR/bench/dlc_io_bench

die() { echo "io_bench: $*" >&2; exit 2; }

[[ $(id -u) -eq 0 ]] || die "needs root (it attaches a loop device)"
command -v fio >/dev/null || apt-get install -y fio >/dev/null || die "cannot install fio"
command -v jq >/dev/null || apt-get install -y jq >/dev/null || die "cannot install jq"
if [[ ! -x $BENCH ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DDLC_BUILD_BENCH=ON >/dev/null
  cmake --build "$BUILD_DIR" --target dlc_io_bench -j"$(nproc)" >/dev/null
fi

IMG=""
DEV=""
cleanup() {
  if [[ -n $DEV ]]; then losetup -d "$DEV" || echo "io_bench: could not detach $DEV" >&2; fi
  if [[ -n $IMG ]]; then rm -f "$IMG"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

IMG=$(mktemp -p "$BENCH_DIR" dlc-io-bench.XXXXXX.img)
fallocate -l "$SIZE" "$IMG"
BYTES=$(stat -c %s "$IMG")
# Write it once: fallocate leaves "unwritten" extents, which the filesystem
# reads back as zeros without touching the disk.
dd if=/dev/zero of="$IMG" bs=1M count=$((BYTES >> 20)) oflag=direct conv=notrunc status=none
DEV=$(losetup --find --show --direct-io=on "$IMG")
echo "io_bench: $DEV over $IMG ($BYTES bytes, direct-io loop), $ROUNDS rounds"

fio_gbps() {  # fio_gbps write|read
  fio --name=w --filename="$DEV" --rw="$1" --bs=1M --direct=1 --ioengine=io_uring --iodepth=32 \
      --size="$BYTES" --output-format=json | jq -r ".jobs[0].$1.bw_bytes / 1e9"
}
dlc_gbps() {  # dlc_gbps write|read
  "$BENCH" --rw "$1" --filename "$DEV" --bs 1M --iodepth 32 --size "$BYTES" |
    sed -n 's/.*: \([0-9.]*\) GB\/s.*/\1/p'
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

# Each round runs fio and dlc back to back (which goes first alternates, so
# neither always inherits the other's device state); the ratio of a round
# compares two runs made under the same conditions.
declare -A runs
for ((round = 1; round <= ROUNDS; round++)); do
  for rw in write read; do
    if ((round % 2)); then
      f=$(fio_gbps "$rw"); d=$(dlc_gbps "$rw")
    else
      d=$(dlc_gbps "$rw"); f=$(fio_gbps "$rw")
    fi
    [[ -n $f && -n $d ]] || die "a $rw run produced no number"
    r=$(awk -v d="$d" -v f="$f" 'BEGIN {printf "%.3f", d / f}')
    runs[fio_$rw]+="$f "
    runs[dlc_$rw]+="$d "
    runs[ratio_$rw]+="$r "
    printf 'round %d %-5s fio %6.3f GB/s  dlc %6.3f GB/s  dlc/fio %s\n' "$round" "$rw" "$f" "$d" "$r"
  done
done

status=0
echo "median of $ROUNDS rounds (1 MiB, iodepth 32, O_DIRECT, io_uring):"
for rw in write read; do
  # shellcheck disable=SC2086
  f=$(median ${runs[fio_$rw]})
  # shellcheck disable=SC2086
  d=$(median ${runs[dlc_$rw]})
  # shellcheck disable=SC2086
  ratio=$(median ${runs[ratio_$rw]})
  printf '%-5s fio %6.3f GB/s  dlc %6.3f GB/s  dlc/fio %s (median of per-round ratios; of medians %s)\n' \
    "$rw" "$f" "$d" "$ratio" "$(awk -v d="$d" -v f="$f" 'BEGIN {printf "%.3f", d / f}')"
  if [[ -n ${MIN_RATIO:-} ]] && awk -v r="$ratio" -v m="$MIN_RATIO" 'BEGIN {exit !(r < m)}'; then
    echo "io_bench: $rw ratio $ratio is below $MIN_RATIO" >&2
    status=1
  fi
done
exit $status
