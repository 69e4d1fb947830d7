#!/usr/bin/env bash
# The dlc demo: the main job on an embedded default. It creates its own files
# and loop devices under a temporary directory, shows every tool that is built,
# and detaches and removes everything when it ends. Run as root (loop devices).
#   scripts/demo.sh [PATH-TO-dlc]
set -euo pipefail

dlc=$(readlink -f "${1:-build/dlc}")
[ -x "$dlc" ] || { echo "demo: no dlc binary at $dlc; run ./setup.sh build first" >&2; exit 4; }

work=$(mktemp -d /tmp/dlc-demo.XXXXXX)
export DLC_HOME="$work/home"
loops=()
mounts=()
cleanup() {
  set +e
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
  for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
show() { printf '$'; printf ' %q' "$@"; printf '\n'; } # the command as typed, paths shortened
# Shows a command, runs it, and shows its exit status when it is not 0.
run() {
  show "$@" | sed "s#$dlc#dlc#g; s#$work#\$DEMO#g"
  local rc=0
  "$@" || rc=$?
  [ "$rc" -eq 0 ] || printf '(exit %d)\n' "$rc"
  return 0
}
expect() {  # expect CODE command...: run it and check the exit code
  local want=$1; shift
  show "$@" | sed "s#$dlc#dlc#g; s#$work#\$DEMO#g"
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "demo: expected exit $want, got $rc" >&2
    exit 1
  fi
  printf '(exit %d, as expected)\n' "$rc"
}
built() { ! "$dlc" "$1" --help 2>/dev/null | grep -q "not available in this build yet"; }
new_loop() {  # new_loop NAME SIZE: sets $loop to a loop device over a fully allocated file of ours
  fallocate -l "$2" "$work/$1.img"
  loop=$(losetup --find --show --direct-io=on "$work/$1.img")
  loops+=("$loop")
}

mkdir -p "$DLC_HOME" "$work/data/export" "$work/data/config"
# A tenant's dataset with personal financial information (check digits valid;
# the values are synthetic) and an application secret.
cat > "$work/data/export/customers.csv" <<'CSV'
id,name,id_no,card_no,phone,branch
1,Wang Fang,110105198005142315,6222021000123456781,13812345678,Beijing Chaoyang
2,Li Na,310104199203011186,6214830000765437,+86 139 0011 2233,Shanghai Xuhui
3,Zhang Wei,440305197511220470,6228480012345678911,0086-15900112233,Shenzhen Nanshan
CSV
cat > "$work/data/export/orders.log" <<'LOG'
2026-11-20T09:12:01Z order=88121 customer=1 amount=1200.00 status=paid
2026-11-20T09:14:44Z order=88122 customer=2 amount=83.50 status=paid 卡号6214830000765437
2026-11-20T09:15:02Z partner USCC 91350100M000100Y43 settlement ok
LOG
cat > "$work/data/config/app.ini" <<'INI'
[database]
url = postgres://app:S3cr3t-Pa55w0rd@db.internal:5432/core
[cloud]
aws_access_key_id = AKIAQ3EGUOTXE7QXYZAB
INI
head -c 4M /dev/urandom > "$work/data/export/archive.bin"

echo "dlc $("$dlc" --version | cut -d' ' -f2) demo; working in $work (removed at the end)"

if built classify; then
  step "classify: find, grade and label sensitive data (raw values are never printed)"
  run "$dlc" classify "$work/data" --label "$work/labels.json"
  step "classify mask: a masked copy for a test environment (JR/T 0167 8c)"
  run "$dlc" classify mask "$work/data/export/customers.csv" "$work/customers.masked.csv"
  cat "$work/customers.masked.csv"
fi

if built backup; then
  step "backup: an SM4-GCM repository, a snapshot, a full read-data check, a verified restore"
  printf 'correct horse battery staple\n' > "$work/passphrase"
  chmod 600 "$work/passphrase"
  export DLC_PASSPHRASE_FILE="$work/passphrase"
  run "$dlc" backup init --repo "$work/repo" --cipher sm4-gcm --region cn-north-1 --site demo-dc
  run "$dlc" backup backup --repo "$work/repo" "$work/data" --tag demo
  run "$dlc" backup snapshots --repo "$work/repo"
  run "$dlc" backup check --repo "$work/repo" --read-data
  run "$dlc" backup locations --repo "$work/repo"
  run "$dlc" backup restore latest --repo "$work/repo" --target "$work/restored" --verify
fi

if built migrate; then
  step "migrate --verify: tenant exit to a new location, verified end to end"
  run "$dlc" migrate "$work/data" "$work/new-cloud" --verify
fi

if built wipe; then
  step "wipe: a retired volume (a 64 MiB loop device created for this demo)"
  new_loop volume 64M
  vol=$loop
  mkfs.ext4 -q "$vol"
  mkdir -p "$work/mnt"
  mount "$vol" "$work/mnt"
  mounts+=("$work/mnt")
  cp -a "$work/data/." "$work/mnt/"
  sync
  echo "the volume holds the dataset and is mounted; the interlock refuses it:"
  expect 3 "$dlc" wipe device "$vol" --yes
  umount "$work/mnt"
  mounts=()
  run "$dlc" wipe device "$vol" --method random --verify all --yes \
      --operator "Demo Operator" --organisation "Example Bank DC2" --witness "Second Person" \
      --asset DEMO-0001 --tenant tenant-42 --source "tenant exit" --destination internal-reuse \
      --cert-dir "$work/certs"
  if grep -qa "6222021000123456781" "$vol"; then echo "demo: data still on the volume!" >&2; exit 1; fi
  echo "read back the raw device: no trace of the card numbers."

  step "verify certificate: the signed NIST SP 800-88 certificate of sanitization"
  cert=$(ls "$work"/certs/*.json | head -n 1)
  run "$dlc" verify certificate "$cert" --pubkey "$DLC_HOME/host-key.pub"
  cp "$cert" "$work/forged.json"
  sed -i 's/"passes":1/"passes":3/; s/Demo Operator/Someone Else/' "$work/forged.json"
  echo "a copy with one field changed is rejected:"
  expect 1 "$dlc" verify certificate "$work/forged.json" --pubkey "$DLC_HOME/host-key.pub"

  step "wipe file: overwrite, verify, rename and unlink a credentials file"
  cp "$work/data/config/app.ini" "$work/app.ini.old"
  run "$dlc" wipe file "$work/app.ini.old" --yes --cert-dir "$work/certs"
fi

step "audit: every data-changing command left a hash-chained, signed record"
run "$dlc" audit show --last 8
run "$dlc" audit verify --pubkey "$DLC_HOME/host-key.pub"
cp "$DLC_HOME/audit.jsonl" "$work/audit-tampered.jsonl"
cp "$DLC_HOME/audit.jsonl.head" "$work/audit-tampered.jsonl.head" 2>/dev/null || true
sed -i '0,/"outcome":"ok"/s//"outcome":"failed"/' "$work/audit-tampered.jsonl"
echo "a copy of the log with one record edited is caught, naming the record:"
expect 1 "$dlc" audit verify "$work/audit-tampered.jsonl" --pubkey "$DLC_HOME/host-key.pub"

cleanup
trap - EXIT
for l in "${loops[@]}"; do
  if losetup "$l" >/dev/null 2>&1 && losetup "$l" | grep -q "$work"; then
    echo "demo: $l is still attached" >&2; exit 1
  fi
done
step "done: every loop device is detached and $work is removed"
