#!/usr/bin/env bash
# Migration benchmark (issue 6): on the backup benchmark's dataset
# (/work/shared/bench/gen_dataset.py, ~1 GiB, 2094 files), in one run, alternating:
#   dlc migrate SRC DST --verify                  (local to local)
#   dlc migrate SRC dlc://127.0.0.1:PORT/x --verify (loopback, mutual TLS 1.3)
#   rsync -a --checksum SRC/ DST/
#   rclone copy SRC DST && rclone check SRC DST
# and, for context, two references with dlc's durability (neither re-reads):
#   rsync -a --checksum --fsync SRC/ DST/        (rsync with every file fsync'd)
#   cp -a SRC DST && sync -f DST                 (a bare durable copy: the floor)
# Neither rsync nor rclone syncs by default: their writes are still in the page
# cache when they exit (the next run's cache drop writes them back, uncounted).
# Page cache dropped before every run (root). Prints medians and the ratios
# (peer time / dlc time; > 1 means dlc is faster). Not a test: timings drift.
# Usage: bench/migrate_bench.sh [DLC_BINARY] [RUNS]   (env: DATA=/tmp/dlc-bench-data, WORK=/tmp/dlc-mbench)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dlc=$(readlink -f "${1:-$here/build/dlc}")
runs=${2:-3}
data=${DATA:-/tmp/dlc-bench-data}
work=${WORK:-/tmp/dlc-mbench}
gen=${GEN:-$here/../shared/bench/gen_dataset.py}
[ -f "$gen" ] || gen=/work/shared/bench/gen_dataset.py

for tool in rsync rclone openssl; do
  command -v $tool >/dev/null || { echo "install $tool first: apt-get install -y rsync rclone openssl" >&2; exit 2; }
done
[ -x "$dlc" ] || { echo "no dlc binary at $dlc" >&2; exit 2; }
[ -d "$data" ] || python3 "$gen" "$data" >/dev/null
rm -rf "$work"; mkdir -p "$work/pki" "$work/recv"

# Certificates for the loopback TLS run.
(
  cd "$work/pki"
  mkca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.pem -days 2 -subj /CN=$1 2>/dev/null; }
  mkcert() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr -subj /CN=$1 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' $3 > $1.ext
    openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem -days 2 -extfile $1.ext 2>/dev/null
  }
  mkca ca; mkcert server ca IP:127.0.0.1; mkcert client ca DNS:client
)
DLC_HOME=$work/rhome "$dlc" -q migrate receive --listen 127.0.0.1:0 --root "$work/recv" \
  --tls-cert "$work/pki/server.pem" --tls-key "$work/pki/server.key" --tls-ca "$work/pki/ca.pem" \
  --port-file "$work/port" --region cn-north-1 &
recv_pid=$!
trap 'kill $recv_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")

drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
now() { date +%s.%N; }
declare -A times
run() {  # name command...
  local name=$1; shift
  rm -rf "$work/dst" "$work/recv/x" "$work/home"; mkdir -p "$work/home"; drop
  local t0; t0=$(now)
  "$@" >/dev/null
  local t1; t1=$(now)
  times[$name]="${times[$name]:-} $(echo "$t1 - $t0" | bc -l)"
}
for i in $(seq "$runs"); do
  run dlc_local env DLC_HOME="$work/home" "$dlc" -q migrate "$data" "$work/dst" --verify
  run rsync rsync -a --checksum "$data/" "$work/dst/"
  run dlc_tls env DLC_HOME="$work/home" "$dlc" -q migrate "$data" "dlc://127.0.0.1:$port/x" --verify \
    --tls-cert "$work/pki/client.pem" --tls-key "$work/pki/client.key" --tls-ca "$work/pki/ca.pem"
  run rclone sh -c "rclone copy '$data' '$work/dst' && rclone check '$data' '$work/dst' 2>/dev/null"
  run rsync_fsync rsync -a --checksum --fsync "$data/" "$work/dst/"
  run cp_sync sh -c "cp -a '$data' '$work/dst' && sync -f '$work/dst'"
done
median() { echo "$@" | tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "dataset: $data ($(du -sh "$data" | cut -f1), $(find "$data" -type f | wc -l) files), runs: $runs, caches dropped"
for k in dlc_local dlc_tls rsync rclone rsync_fsync cp_sync; do printf '%-10s median %6.2f s  (runs:%s)\n' "$k" "$(median ${times[$k]})" "${times[$k]}"; done
dl=$(median ${times[dlc_local]}); dt=$(median ${times[dlc_tls]})
rs=$(median ${times[rsync]}); rc=$(median ${times[rclone]})
rf=$(median ${times[rsync_fsync]}); cs=$(median ${times[cp_sync]})
printf 'ratio rsync/dlc_local  %.2fx   (target >= 2)\n' "$(echo "$rs / $dl" | bc -l)"
printf 'ratio rclone/dlc_local %.2fx   (target >= 1.5)\n' "$(echo "$rc / $dl" | bc -l)"
printf 'ratio rsync/dlc_tls    %.2fx\n' "$(echo "$rs / $dt" | bc -l)"
printf 'ratio rclone/dlc_tls   %.2fx\n' "$(echo "$rc / $dt" | bc -l)"
printf 'ratio rsync_fsync/dlc_local %.2fx  (same durability, no re-read)\n' "$(echo "$rf / $dl" | bc -l)"
printf 'ratio cp_sync/dlc_local     %.2fx  (a bare durable copy, no hash, no re-read: 1 = at the floor)\n' "$(echo "$cs / $dl" | bc -l)"
