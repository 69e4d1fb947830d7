#!/usr/bin/env bash
# Boots Debian 12's cloud kernel in QEMU (TCG works without KVM) with emulated
# NVMe drives and an initramfs holding busybox-static, the freshly built dlc
# binary with its libraries, the kernel's dm-mod/md-mod/raid1 modules and the
# host's dmsetup (the guest stacks real holders on the namespaces), and
# tests/nvme/guest_init.sh as /init; the guest runs the scenario and powers
# off. Used by tests/e2e/nvme_qemu_test.cpp.
#
#   qemu_harness.sh DLC_BINARY WORK_DIR
#
# Environment: DLC_TEST_CACHE (default /var/cache/dlc-test, else WORK_DIR/cache)
# keeps the kernel .deb and its unpacked vmlinuz between runs; QEMU_TIMEOUT
# (default 240 s) bounds the guest; DLC_QEMU_KVM=1 uses KVM instead of TCG.
# Prints "SERIAL <path of the guest's serial log>" and exits 0 when the guest
# ran; prints "SKIP <reason>" and exits 77 when qemu-system-x86_64 cannot run
# or the kernel cannot be fetched; anything else is a harness failure.
set -euo pipefail

dlc=${1:?usage: qemu_harness.sh DLC_BINARY WORK_DIR}
work=${2:?usage: qemu_harness.sh DLC_BINARY WORK_DIR}
here=$(cd "$(dirname "$0")" && pwd)
timeout_s=${QEMU_TIMEOUT:-240}

skip() { echo "SKIP $*"; exit 77; }
say() { echo "harness: $*" >&2; }

# ---- QEMU ---------------------------------------------------------------------
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || skip "qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86)"
"$qemu" --version >/dev/null 2>&1 || skip "qemu-system-x86_64 does not run: $("$qemu" --version 2>&1 | head -n 1)"
busybox=/bin/busybox
{ [ -x "$busybox" ] && ! ldd "$busybox" >/dev/null 2>&1; } ||
  skip "a static busybox is not installed (apt-get install busybox-static)"
for tool in cpio sfdisk mkfs.ext4; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install cpio fdisk e2fsprogs)"
done

mkdir -p "$work"
cache=${DLC_TEST_CACHE:-/var/cache/dlc-test}
if ! mkdir -p "$cache/kernel" 2>/dev/null || [ ! -w "$cache/kernel" ]; then cache=$work/cache; fi
mkdir -p "$cache/kernel"

# ---- Kernel: linux-image-cloud-amd64 -> its versioned package, fetched once ------
resolve() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(resolve || true)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
  say "apt lists do not know linux-image-cloud-amd64; running apt-get update"
  apt-get update >/dev/null 2>&1 || true
  pkg=$(resolve || true)
fi
# The holders scenario needs device-mapper and md (raid1); Debian's cloud
# kernel builds them as modules, none of which has further dependencies.
holder_mods="dm-mod md-mod raid1"
holder_modules_from() {  # holder_modules_from UNPACKED_DEB_ROOT
  mkdir -p "$kdir/modules/holders"
  for m in $holder_mods; do
    find "$1/lib/modules" -path '*drivers/md/*' -name "$m.ko*" -exec cp {} "$kdir/modules/holders/" \; || true
  done
}
kdir=""
if [ -n "$pkg" ]; then
  kdir=$cache/kernel/$pkg
  if [ ! -s "$kdir/vmlinuz" ]; then
    say "fetching $pkg"
    tmp=$(mktemp -d "$cache/kernel/fetch.XXXXXX")
    if (cd "$tmp" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1); then
      dpkg -x "$tmp"/*.deb "$tmp/x"
      mkdir -p "$kdir"
      cp "$tmp"/x/boot/vmlinuz-* "$kdir/vmlinuz"
      # Keep the NVMe modules in case the kernel builds them as modules.
      mkdir -p "$kdir/modules"
      find "$tmp/x/lib/modules" \( -name 'nvme-core.ko*' -o -name 'nvme.ko*' \) -path '*drivers/nvme/host*' \
        -exec cp {} "$kdir/modules/" \; || true
      cp "$tmp"/x/lib/modules/*/modules.builtin "$kdir/modules.builtin" 2>/dev/null || true
      holder_modules_from "$tmp/x"
      mv "$tmp"/*.deb "$kdir/" 2>/dev/null || true
    fi
    rm -rf "$tmp"
  fi
fi
if [ -z "$kdir" ] || [ ! -s "$kdir/vmlinuz" ]; then
  # Offline: any kernel fetched before.
  kdir=$(ls -d "$cache"/kernel/linux-image-*/ 2>/dev/null | head -n 1 || true)
  kdir=${kdir%/}
  [ -n "$kdir" ] && [ -s "$kdir/vmlinuz" ] ||
    skip "cannot fetch the Debian cloud kernel (apt-get download ${pkg:-linux-image-cloud-amd64} failed; no network or apt sources?)"
fi
say "kernel $(basename "$kdir")"
# A kernel cached before the holders scenario existed: take its modules from the kept .deb once.
if [ ! -d "$kdir/modules/holders" ] && deb=$(ls "$kdir"/*.deb 2>/dev/null | head -n 1) && [ -n "$deb" ]; then
  tmp=$(mktemp -d "$cache/kernel/mods.XXXXXX")
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards '*/kernel/drivers/md/*' 2>/dev/null || true
  holder_modules_from "$tmp"
  rm -rf "$tmp"
fi

# ---- Initramfs: busybox, dlc and its libraries, /init ------------------------------
root=$work/initramfs
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,mnt,etc,lib/modules}
cp "$busybox" "$root/bin/busybox"
with_libs() {  # with_libs BINARY: copy the libraries ldd lists into the initramfs
  ldd "$1" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
cp "$dlc" "$root/bin/dlc"
with_libs "$dlc"
# dmsetup (Debian package dmsetup) builds the device-mapper holder; without it
# the guest reports dmsetup=absent and the test fails saying so.
if dmsetup=$(command -v dmsetup); then
  cp "$dmsetup" "$root/sbin/dmsetup"
  with_libs "$dmsetup"
fi
# ld.so is found at its absolute path; /lib64 may be a symlink on the host.
mkdir -p "$root/lib64"
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
if ! grep -q 'drivers/nvme/host/nvme.ko' "$kdir/modules.builtin" 2>/dev/null; then
  # nvme as modules: nvme-core before nvme, decompressed for busybox insmod.
  for m in nvme-core nvme; do
    src=$(ls "$kdir/modules/$m.ko"* 2>/dev/null | head -n 1 || true)
    [ -n "$src" ] || continue
    case "$src" in
      *.xz) xz -dc "$src" >"$root/lib/modules/$m.ko" ;;
      *.zst) zstd -qdc "$src" >"$root/lib/modules/$m.ko" ;;
      *) cp "$src" "$root/lib/modules/$m.ko" ;;
    esac
  done
  mv "$root/lib/modules/nvme-core.ko" "$root/lib/modules/0-nvme-core.ko" 2>/dev/null || true
  mv "$root/lib/modules/nvme.ko" "$root/lib/modules/1-nvme.ko" 2>/dev/null || true
fi
# dm-mod, md-mod, raid1 (unless built in), decompressed, loaded by the holders
# scenario in the order listed in /lib/modules/holders/order.
mkdir -p "$root/lib/modules/holders"
for m in $holder_mods; do
  if grep -q "drivers/md/$m.ko" "$kdir/modules.builtin" 2>/dev/null; then continue; fi
  src=$(ls "$kdir/modules/holders/$m.ko"* 2>/dev/null | head -n 1 || true)
  [ -n "$src" ] || continue
  case "$src" in
    *.xz) xz -dc "$src" >"$root/lib/modules/holders/$m.ko" ;;
    *.zst) zstd -qdc "$src" >"$root/lib/modules/holders/$m.ko" ;;
    *) cp "$src" "$root/lib/modules/holders/$m.ko" ;;
  esac
  echo "$m" >>"$root/lib/modules/holders/order"
done
cp "$here/guest_init.sh" "$root/init"
chmod 0755 "$root/init" "$root/bin/busybox" "$root/bin/dlc"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initrd.cpio"

# ---- Drives -------------------------------------------------------------------------
rm -f "$work"/nvme*.img
truncate -s 64M "$work/nvme0.img"
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$work/nvme0.img" >/dev/null
mkfs.ext4 -q -F -E offset=1048576 "$work/nvme0.img" 63M >/dev/null
truncate -s 32M "$work/nvme1a.img" "$work/nvme1b.img"

# ---- Boot -----------------------------------------------------------------------------
# TCG by default: it works everywhere (a /dev/kvm that exists may still fail
# with "KVM internal error" in nested VMs); DLC_QEMU_KVM=1 opts in.
accel=(-accel tcg)
if [ "${DLC_QEMU_KVM:-0}" = 1 ] && [ -w /dev/kvm ]; then accel=(-enable-kvm -cpu host); fi
serial=$work/serial.log
say "booting (timeout ${timeout_s}s)"
set +e
timeout -k 10 "$timeout_s" "$qemu" "${accel[@]}" -nographic -no-reboot -m 1024 -smp 2 \
  -kernel "$kdir/vmlinuz" -initrd "$work/initrd.cpio" \
  -append 'console=ttyS0 panic=-1 quiet' \
  -drive file="$work/nvme0.img",if=none,id=nv0,format=raw \
  -device nvme,serial=DLCTEST0001,drive=nv0 \
  -device nvme-subsys,id=subsys0,nqn=dlcsub \
  -device nvme,serial=DLCTEST0002,subsys=subsys0,id=ctrl1 \
  -drive file="$work/nvme1a.img",if=none,id=nv1,format=raw \
  -device nvme-ns,drive=nv1,nsid=1,bus=ctrl1 \
  -drive file="$work/nvme1b.img",if=none,id=nv2,format=raw \
  -device nvme-ns,drive=nv2,nsid=2,bus=ctrl1 \
  </dev/null >"$serial" 2>"$work/qemu.stderr"
rc=$?
set -e
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then say "the guest did not power off within ${timeout_s}s"; fi
if [ $rc -ne 0 ] && grep -q "Could not access KVM\|failed to initialize" "$work/qemu.stderr"; then
  skip "qemu-system-x86_64 cannot start a guest here: $(head -n 1 "$work/qemu.stderr")"
fi
echo "SERIAL $serial"
echo "QEMU_RC $rc"
