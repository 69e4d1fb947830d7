#!/usr/bin/env bash
# Wipe throughput: dlc's single-pass overwrite and its read-back verification
# against fio (io_uring, 1 MiB, direct=1, iodepth 32), dd (oflag/iflag=direct,
# bs=1M) and shred -n1, on the same loop device and on the same file, in one
# run, alternating the tools, ROUNDS rounds, medians. Not a test: run it by
# hand as root (it creates and removes its own backing file and loop device).
#
#   bench/wipe_bench.sh [DLC_BINARY]      (default: build/dlc)
#   env: SIZE_MIB (2048), ROUNDS (3), BENCH_DIR (a new dir under /var/tmp)
#
# Device: a fully written SIZE_MIB file behind `losetup --direct-io=on`, so
# direct I/O measures the disk, not the page cache. File: a fully written
# SIZE_MIB regular file on the filesystem holding BENCH_DIR (re-created before
# each dlc file run, since dlc removes the file it wipes).
# dlc's figures are the I/O phases it reports (write_seconds and the
# verification's seconds in --json), so process start-up and certificate
# signing are not counted; its wall time is printed too.
# Durability: dlc's write phase ends with fdatasync (a wipe the device may
# still hold in its volatile cache is not a wipe), so the peers' writes are
# made durable too: fio --end_fsync=1, dd conv=fsync (shred syncs itself).
# fio without the sync is printed as a reference ("fio-write-nosync"): on a
# disk whose cache flush is slow the two differ a lot.
set -euo pipefail

dlc=$(readlink -f "${1:-build/dlc}")
size_mib=${SIZE_MIB:-2048}
rounds=${ROUNDS:-3}
[ "$(id -u)" -eq 0 ] || { echo "wipe_bench: run as root (loop devices)" >&2; exit 4; }
[ -x "$dlc" ] || { echo "wipe_bench: no dlc binary at $dlc" >&2; exit 4; }
for tool in fio shred dd losetup python3; do
  if ! command -v "$tool" >/dev/null; then
    [ "$tool" = fio ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y fio >/dev/null || true; }
    command -v "$tool" >/dev/null || { echo "wipe_bench: $tool is missing" >&2; exit 4; }
  fi
done

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/dlc-wipe-bench-XXXXXX")
home="$work/home"
mkdir -p "$home"
img="$work/disk.img"
file="$work/target.bin"
loop=""
cleanup() {
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

bytes=$((size_mib * 1024 * 1024))
echo "wipe_bench: writing a ${size_mib} MiB backing file and a ${size_mib} MiB target file in $work"
dd if=/dev/zero of="$img" bs=1M count="$size_mib" oflag=direct status=none
loop=$(losetup --find --show --direct-io=on "$img")
echo "wipe_bench: loop device $loop (direct-io=on), $rounds rounds, $(nproc) cores"

results="$work/results.txt"
: >"$results"
record() { echo "$1 $2" >>"$results"; }  # name seconds

now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$2"; }

fio_run() {  # target rw [fio options...]
  local out target=$1 rw=$2
  shift 2
  out=$(fio --name=bench --filename="$target" --rw="$rw" --bs=1M --direct=1 --ioengine=io_uring \
            --iodepth=32 --size="${size_mib}M" --output-format=json "$@" 2>/dev/null)
  python3 -c '
import json, sys
j = json.loads(sys.stdin.read())["jobs"][0]
side = j["write"] if sys.argv[1] == "write" else j["read"]
print(side["io_bytes"] / side["bw_bytes"])' "$rw" <<<"$out"
}

dlc_run() {  # kind target method name-prefix
  local t0 t1 out
  t0=$(now)
  if [ "$1" = device ]; then
    out=$(DLC_HOME="$home" "$dlc" --json wipe device "$2" --method "$3" --verify last --yes)
  else
    out=$(DLC_HOME="$home" "$dlc" --json wipe file "$2" --method "$3" --verify last --yes)
  fi
  t1=$(now)
  python3 -c '
import json, sys
t = json.loads(sys.stdin.read())["targets"][0]
assert t["outcome"] in ("sanitized",), t
p = t["evidence"]["passes"][-1]
print(p["write_seconds"], p["verification"]["seconds"])' <<<"$out" | {
    read -r w v
    record "$4-write" "$w"
    record "$4-verify" "$v"
  }
  record "$4-wall" "$(elapsed "$t0" "$t1")"
}

timed() {  # name command...
  local name=$1 t0 t1
  shift
  t0=$(now)
  "$@" >/dev/null 2>&1
  t1=$(now)
  record "$name" "$(elapsed "$t0" "$t1")"
}

refill_file() { dd if=/dev/zero of="$file" bs=1M count="$size_mib" oflag=direct status=none; sync; }

for r in $(seq 1 "$rounds"); do
  echo "wipe_bench: round $r/$rounds"
  # Device: alternate the order each round so no tool always runs first.
  if [ $((r % 2)) -eq 1 ]; then order="dlc fio dd shred"; else order="shred dd fio dlc"; fi
  for tool in $order; do
    case $tool in
      dlc)
        dlc_run device "$loop" zero dev-dlc-zero
        dlc_run device "$loop" random dev-dlc-random ;;
      fio)
        record dev-fio-write "$(fio_run "$loop" write --end_fsync=1)"
        record dev-fio-write-nosync "$(fio_run "$loop" write)"
        record dev-fio-read "$(fio_run "$loop" read)" ;;
      dd)
        timed dev-dd-write dd if=/dev/zero of="$loop" bs=1M count="$size_mib" oflag=direct conv=fsync
        timed dev-dd-read dd if="$loop" of=/dev/null bs=1M count="$size_mib" iflag=direct ;;
      shred)
        timed dev-shred shred -n1 "$loop" ;;
    esac
  done
  # File: the same SIZE_MIB file for every tool.
  for tool in $order; do
    case $tool in
      dlc)
        refill_file; dlc_run file "$file" zero file-dlc-zero
        refill_file; dlc_run file "$file" random file-dlc-random ;;
      fio)
        refill_file
        record file-fio-write "$(fio_run "$file" write --end_fsync=1)"
        refill_file
        record file-fio-write-nosync "$(fio_run "$file" write)"
        record file-fio-read "$(fio_run "$file" read)" ;;
      dd)
        refill_file
        timed file-dd-write dd if=/dev/zero of="$file" bs=1M count="$size_mib" oflag=direct conv=notrunc,fsync
        timed file-dd-read dd if="$file" of=/dev/null bs=1M count="$size_mib" iflag=direct ;;
      shred)
        refill_file
        timed file-shred shred -n1 "$file" ;;
    esac
  done
done

python3 - "$results" "$bytes" <<'EOF'
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    name, secs = line.split()
    runs[name].append(float(secs))
total = int(sys.argv[2])
med = {k: statistics.median(v) for k, v in runs.items()}
gbs = {k: total / v / 1e9 for k, v in med.items() if not k.endswith("-wall")}
print()
print(f"{'measurement':<26}{'median s':>10}{'GB/s':>8}   rounds (s)")
for k in sorted(med):
    rate = f"{gbs[k]:8.2f}" if k in gbs else " " * 8
    print(f"{k:<26}{med[k]:10.3f}{rate}   " + " ".join(f"{x:.3f}" for x in runs[k]))
print()
print("ratios (dlc throughput / peer throughput; > 1 means dlc is faster): ratio of the medians,")
print("and in brackets the median of the per-round ratios (each round's runs are minutes apart")
print("at most, so the paired figure is less disturbed by other load on a shared machine)")
for where in ("dev", "file"):
    def ratio(a, b):
        if a not in gbs or b not in gbs:
            return "n/a"
        paired = statistics.median(y / x for x, y in zip(runs[a], runs[b]))
        return f"{gbs[a] / gbs[b]:.2f}x  [{paired:.2f}x]"
    print(f"  {where}: write  dlc zero / fio write      {ratio(where+'-dlc-zero-write', where+'-fio-write')}   (both synced)")
    print(f"  {where}: write  dlc zero / fio, no sync   {ratio(where+'-dlc-zero-write', where+'-fio-write-nosync')}   (reference: fio leaves the data in the device cache)")
    print(f"  {where}: verify dlc zero / fio read       {ratio(where+'-dlc-zero-verify', where+'-fio-read')}")
    print(f"  {where}: write  dlc zero / dd write       {ratio(where+'-dlc-zero-write', where+'-dd-write')}")
    print(f"  {where}: verify dlc zero / dd read        {ratio(where+'-dlc-zero-verify', where+'-dd-read')}")
    print(f"  {where}: write  dlc random / shred -n1    {ratio(where+'-dlc-random-write', where+'-shred')}")
    print(f"  {where}: verify dlc random / fio read     {ratio(where+'-dlc-random-verify', where+'-fio-read')}")
EOF
