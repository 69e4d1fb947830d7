#!/bin/busybox sh
# /init of the QEMU guest that tests dlc wipe on emulated NVMe drives
# (tests/nvme/qemu_harness.sh builds the initramfs; tests/e2e/nvme_qemu_test.cpp
# parses what this prints). Drives (QEMU 7.2 -device nvme):
#   nvme0: one namespace, 64 MiB, partition 1 with ext4 (made on the host)
#   nvme1: in subsystem "dlcsub" (native multipath: /dev/nvme1nX hang off
#          nvme-subsysN), namespaces 1 and 2, 32 MiB each
# Holders (real kernel, not a fake sysfs): a dm-linear target (dmsetup) over
# nvme0n1 and an md raid1 over nvme1n1 + nvme1n2 (built through md's sysfs
# interface, no mdadm) hold the namespaces while dlc is refused; once they are
# removed the wipes that follow proceed.
# Output protocol, one record per line on the serial console:
#   @@STEP <name> rc=<exit code>        after each dlc run
#   @@OUT <name> <line>                 its stdout (--json documents)
#   @@ERR <name> <line>                 its stderr
#   @@CHECK <name> <value>              facts measured in the guest
#   @@FILE <name> <line>                a file (certificates, host key)
#   @@DONE                              the scenario ran to its end
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /mnt
mount -t tmpfs tmp /tmp
dmesg -n 1
export DLC_HOME=/tmp/dlc
mkdir -p "$DLC_HOME"

for m in /lib/modules/*.ko; do [ -e "$m" ] && insmod "$m"; done
# The controllers probe asynchronously: wait for every namespace.
i=0
while [ $i -lt 100 ]; do
  [ -b /dev/nvme0n1 ] && [ -b /dev/nvme1n1 ] && [ -b /dev/nvme1n2 ] && [ -b /dev/nvme0n1p1 ] && break
  sleep 0.1
  i=$((i + 1))
done

step() {  # step NAME dlc-args...
  name=$1
  shift
  t0=$(cut -d' ' -f1 /proc/uptime)
  /bin/dlc "$@" >/tmp/out 2>/tmp/err
  rc=$?
  echo "@@STEP $name rc=$rc start=$t0 end=$(cut -d' ' -f1 /proc/uptime)"
  sed "s/^/@@OUT $name /" /tmp/out
  sed "s/^/@@ERR $name /" /tmp/err
}
check() { echo "@@CHECK $1 $2 (t=$(cut -d' ' -f1 /proc/uptime))"; }
show_file() { [ -f "$2" ] && sed "s/^/@@FILE $1 /" "$2"; }
yes TENANT-SECRET-DATA | head -c 1048576 >/tmp/marker.1m
marker() {  # marker DEV MIB: fill with a recognisable tenant pattern
  i=0
  while [ $i -lt "$2" ]; do cat /tmp/marker.1m; i=$((i + 1)); done >"$1"
  sync
}
has_marker() {  # has_marker DEV MIB: the pattern in the first, a middle or the last MiB?
  for off in 0 $(($2 / 2)) $(($2 - 1)); do
    if dd if="$1" bs=1048576 skip=$off count=1 2>/dev/null | grep -q TENANT-SECRET-DATA; then
      echo present
      return
    fi
  done
  echo absent
}
nonzero_bytes() { tr -d '\000' <"$1" | wc -c; }
digest() { md5sum <"$1" | cut -d' ' -f1; }  # the whole device, to compare before/after
cert_of() {  # the certificate path in a --json report
  sed -n 's/.*"certificate": "\(.*\.cert\.json\)".*/\1/p' /tmp/out | head -n 1
}

echo
check kernel "$(uname -r)"
check block_devices "$(ls /sys/block | tr '\n' ' ')"
check nvme0n1_device_link "$(readlink /sys/block/nvme0n1/device)"
check nvme1n1_device_link "$(readlink /sys/block/nvme1n1/device)"
check io_uring_disabled "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo absent)"

# 1. Identify and mapping: what dlc would do, touching nothing.
step plan_nvme0n1 --json wipe device /dev/nvme0n1 --method auto --dry-run
step plan_nvme1n1 --json wipe device /dev/nvme1n1 --method auto --dry-run
step plan_nvme1 --json wipe device /dev/nvme1 --method auto --dry-run

# 2. Interlocks: a mounted partition refuses the whole namespace, before any admin command.
mount -t ext4 /dev/nvme0n1p1 /mnt && echo "tenant file" >/mnt/precious.txt && sync
check mounted "$(grep -c nvme0n1p1 /proc/mounts)"
step mounted_overwrite wipe device /dev/nvme0n1 --method zero --yes
step mounted_auto wipe device /dev/nvme0n1 --method auto --yes
check precious_after_refusal "$(cat /mnt/precious.txt)"
umount /mnt

# 3. QEMU has no Sanitize (SANICAP = 0): an explicit sanitize is refused cleanly.
step sanitize_refused wipe device /dev/nvme0n1 --method sanitize-crypto --yes
step sanitize_refused_whole wipe device /dev/nvme1n1 --method sanitize-crypto --whole-drive --yes

# 4. Overwrite (Clear) with a random pattern, verified through io_uring.
marker /dev/nvme0n1 64
check marker_before_overwrite "$(has_marker /dev/nvme0n1 64)"

# 4a. Holders, device-mapper: a dm-linear target over the whole namespace
#     refuses it (exit 3, naming dm-0 and its dm name; --force changes
#     nothing) and leaves the tenant data; removed again, the overwrite below
#     proceeds.
holders() { ls "/sys/block/$1/holders" | tr '\n' ' ' | sed 's/ $//'; }
if [ -f /lib/modules/holders/order ]; then
  while read -r m; do insmod "/lib/modules/holders/$m.ko"; done </lib/modules/holders/order
fi
check holder_modules "$(ls -d /sys/module/dm_mod /sys/module/md_mod /sys/module/raid1 2>/dev/null | sed 's|.*/||' | tr '\n' ' ' | sed 's/ $//')"
check dmsetup "$([ -x /sbin/dmsetup ] && echo present || echo absent)"
export DM_DISABLE_UDEV=1  # no udev here: libdevmapper makes /dev/mapper nodes itself
if [ -x /sbin/dmsetup ] && [ -d /sys/module/dm_mod ]; then
  dmsetup create dlc-holder --table "0 $(cat /sys/block/nvme0n1/size) linear /dev/nvme0n1 0"
  check dm_create "rc=$? table=$(dmsetup table dlc-holder)"
  check holders_dm "$(holders nvme0n1)"
  check dm_slaves "$(ls /sys/block/dm-0/slaves | tr '\n' ' ' | sed 's/ $//') name=$(cat /sys/block/dm-0/dm/name)"
  check digest_before_holder_dm "$(digest /dev/nvme0n1)"
  step holder_dm_plan --json wipe device /dev/nvme0n1 --dry-run
  step holder_dm wipe device /dev/nvme0n1 --yes
  step holder_dm_zero wipe device /dev/nvme0n1 --method zero --yes --force
  check marker_after_holder_dm "$(has_marker /dev/nvme0n1 64)"
  check digest_after_holder_dm "$(digest /dev/nvme0n1)"
  dmsetup remove dlc-holder
  check dm_remove "rc=$? holders=$(holders nvme0n1)"
fi

step overwrite --json wipe device /dev/nvme0n1 --method random --verify all --yes --tenant t-42
check marker_after_overwrite "$(has_marker /dev/nvme0n1 64)"
show_file overwrite_cert "$(cert_of)"

# 5. --method auto: Format NVM with SES=1, verified, signed certificate.
marker /dev/nvme0n1 64
step format_auto --json wipe device /dev/nvme0n1 --method auto --yes --operator "QEMU Guest" \
  --organisation "dlc CI" --witness "GoogleTest" --destination internal-reuse
CERT=$(cert_of)
show_file format_cert "$CERT"
check format_nonzero_bytes "$(nonzero_bytes /dev/nvme0n1)"
check partition_after_format "$(ls /dev/nvme0n1p1 2>/dev/null || echo gone)"
step format_cert_verify verify certificate "$CERT" --pubkey "$DLC_HOME/host-key.pub"
show_file host_pubkey "$DLC_HOME/host-key.pub"

# 6. Native multipath, two namespaces: auto formats namespace 1 only.
marker /dev/nvme1n1 32
marker /dev/nvme1n2 32

# 6a. Holders, md: a raid1 of both namespaces (no superblock, no resync: nothing
#     is written) refuses each namespace and the controller (every namespace
#     it reaches), with or without --force; stopped again, the format below
#     proceeds.
md=/sys/block/md0/md
if [ -d /sys/module/md_mod ] && [ -d /sys/module/raid1 ]; then
  {
    echo md0 >/sys/module/md_mod/parameters/new_array &&
      echo none >$md/metadata_version && echo raid1 >$md/level && echo 2 >$md/raid_disks &&
      echo $(($(cat /sys/block/nvme1n1/size) / 2)) >$md/component_size &&
      cat /sys/block/nvme1n1/dev >$md/new_dev && echo 0 >$md/dev-nvme1n1/slot &&
      cat /sys/block/nvme1n2/dev >$md/new_dev && echo 1 >$md/dev-nvme1n2/slot &&
      echo none >$md/resync_start && echo active >$md/array_state
  }
  check md_create "rc=$? level=$(cat $md/level) state=$(cat $md/array_state) degraded=$(cat $md/degraded)"
  check holders_md "$(holders nvme1n1) $(holders nvme1n2)"
  check md_slaves "$(ls /sys/block/md0/slaves | tr '\n' ' ' | sed 's/ $//')"
  check digest_before_holder_md "$(digest /dev/nvme1n1) $(digest /dev/nvme1n2)"
  step holder_md wipe device /dev/nvme1n1 --yes
  step holder_md_force wipe device /dev/nvme1n2 --method zero --yes --force
  step holder_md_ctrl_plan --json wipe device /dev/nvme1 --method auto --dry-run
  step holder_md_ctrl wipe device /dev/nvme1 --method format-user-data --yes --force
  check markers_after_holder_md "$(has_marker /dev/nvme1n1 32) $(has_marker /dev/nvme1n2 32)"
  check digest_after_holder_md "$(digest /dev/nvme1n1) $(digest /dev/nvme1n2)"
  echo clear >$md/array_state
  check md_stop "rc=$? holders=$(holders nvme1n1)$(holders nvme1n2)"
fi
step format_ns1 --json wipe device /dev/nvme1n1 --method auto --sample 100 --yes
check ns1_nonzero_bytes "$(nonzero_bytes /dev/nvme1n1)"
check ns2_marker_after_ns1 "$(has_marker /dev/nvme1n2 32)"

# 7. The controller: every namespace it reaches.
step format_ctrl --json wipe device /dev/nvme1 --method format-user-data --yes
check ns2_nonzero_after_ctrl "$(nonzero_bytes /dev/nvme1n2)"

# 8. The audit log of everything above verifies.
step audit_verify audit verify "$DLC_HOME/audit.jsonl" --pubkey "$DLC_HOME/host-key.pub"

echo "@@DONE"
sync
poweroff -f
