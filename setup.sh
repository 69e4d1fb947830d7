#!/usr/bin/env bash
# dlc set-up for a fresh Debian 12 machine, run as root. Idempotent: installs
# only the Debian packages that are missing, configures and builds, then
#   ./setup.sh demo   runs the demo (files and loop devices it creates itself)
#   ./setup.sh test   runs the whole test suite (what .ci/run calls)
#   ./setup.sh build  only builds
# Environment: BUILD_DIR (default build), BUILD_TYPE (Release or Debug).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

action=${1:-build}
case "$action" in demo|test|build) ;; *)
  echo "usage: $0 demo|test|build" >&2; exit 2 ;;
esac

# Build and test dependencies, Debian 12 package names. Keep docs/design.md in sync.
packages=(
  cmake g++ make pkg-config git
  libssl-dev libgcrypt20-dev          # OpenSSL 3 EVP; SM4-GCM, BLAKE2b from libgcrypt
  libblkid-dev liburing-dev           # interlocks / signatures; io_uring engine
  libnvme-dev libjson-c-dev           # NVMe admin commands (libnvme.pc needs json-c)
  libboost-program-options-dev        # CLI parsing
  nlohmann-json3-dev libzstd-dev      # JSON documents; backup compression
  zlib1g-dev libdeflate-dev           # classify: gzip (masked copies; inputs, inflated by libdeflate)
  libgtest-dev googletest             # tests
  util-linux e2fsprogs                # losetup, mkfs.ext4, mount for loop-device tests
  fdisk btrfs-progs dmsetup           # wipe tests: partitions (sfdisk), CoW honesty, holders
  libp11-kit-dev softhsm2             # backup: PKCS#11 header; a real token for the key-slot tests
  openssl                             # migrate tests: certificates for the mutual-TLS receiver
  qemu-system-x86 busybox-static cpio # wipe NVMe test: a QEMU guest with emulated NVMe drives
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: missing packages: ${missing[*]}; run as root to install them" >&2
    exit 4
  fi
  echo "setup.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"

case "$action" in
  demo) exec ./scripts/demo.sh "$build_dir/dlc" ;;
  test) exec ctest --test-dir "$build_dir" --output-on-failure -j"$(nproc)" ;;
  build) echo "setup.sh: built $build_dir/dlc" ;;
esac
