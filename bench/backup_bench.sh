#!/usr/bin/env bash
# dlc backup vs restic vs borg on the anchor dataset (../shared/bench/gen_dataset.py,
# ~1 GiB, 2094 files), in one run, tools alternating, median of RUNS:
#   init + first backup, second (unchanged) backup, restore, full read-data check;
# prints wall times, throughput ratios (peer time / dlc time: > 1 means dlc is faster),
# repository sizes and peak RSS (/usr/bin/time -v). Page caches are dropped before
# each timed step when run as root. Not a test: a measurement.
#
# usage: bench/backup_bench.sh [DLC_BINARY] ; env: DATA (default /tmp/dlc-bench-data),
#        WORK (default /tmp/dlc-bench-work), RUNS (default 3), TOOLS (default
#        "dlc restic borg dlc-sm4"), GEN (path of gen_dataset.py)
# needs: apt-get install -y restic borgbackup time
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DLC=${1:-$here/../build/dlc}
DLC=$(readlink -f "$DLC")
DATA=${DATA:-/tmp/dlc-bench-data}
WORK=${WORK:-/tmp/dlc-bench-work}
RUNS=${RUNS:-3}
TOOLS=${TOOLS:-"dlc restic borg dlc-sm4"}
GEN=${GEN:-$here/../../shared/bench/gen_dataset.py}
for t in restic borg /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t: apt-get install -y restic borgbackup time" >&2; exit 4; }
done
[ -x "$DLC" ] || { echo "no dlc binary at $DLC (build it first)" >&2; exit 4; }
if [ ! -d "$DATA" ]; then
  echo "generating the anchor dataset into $DATA"
  python3 "$GEN" "$DATA" >/dev/null
fi

rm -rf "$WORK"; mkdir -p "$WORK"
printf 'bench-passphrase\n' > "$WORK/pass"
export DLC_PASSPHRASE_FILE=$WORK/pass DLC_HOME=$WORK/dlc-home
export RESTIC_PASSWORD_FILE=$WORK/pass BORG_PASSPHRASE=bench-passphrase
export BORG_BASE_DIR=$WORK/borg-home BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
results=$WORK/results.tsv
: > "$results"

drop_caches() { sync; if [ "$(id -u)" = 0 ]; then echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; fi; }

# timed TOOL STEP RUN cmd...: appends "tool step run seconds maxrss_kb"
timed() {
  local tool=$1 step=$2 run=$3; shift 3
  drop_caches
  local out=$WORK/time.$$
  if ! /usr/bin/time -f '%e %M' -o "$out" "$@" >"$WORK/last.log" 2>&1; then
    echo "FAILED: $tool $step: $*" >&2; tail -5 "$WORK/last.log" >&2; exit 1
  fi
  read -r secs rss < "$out"
  printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "$step" "$run" "$secs" "$rss" >> "$results"
}

one() {  # one tool, one run
  local tool=$1 run=$2 repo=$WORK/repo-$1 target=$WORK/restore-$1
  rm -rf "$repo" "$target"; mkdir -p "$target"
  case $tool in
    dlc|dlc-sm4)
      local cipher=aes-256-gcm; [ "$tool" = dlc-sm4 ] && cipher=sm4-gcm
      timed "$tool" init "$run" "$DLC" -q backup init --repo "$repo" --cipher "$cipher"
      timed "$tool" backup1 "$run" "$DLC" -q backup backup --repo "$repo" "$DATA"
      timed "$tool" backup2 "$run" "$DLC" -q backup backup --repo "$repo" "$DATA"
      timed "$tool" restore "$run" "$DLC" -q backup restore --repo "$repo" --target "$target"
      timed "$tool" check "$run" "$DLC" -q backup check --repo "$repo" --read-data ;;
    restic)
      timed restic init "$run" restic -q init -r "$repo"
      timed restic backup1 "$run" restic -q backup -r "$repo" "$DATA"
      timed restic backup2 "$run" restic -q backup -r "$repo" "$DATA"
      timed restic restore "$run" restic -q restore latest -r "$repo" --target "$target"
      timed restic check "$run" restic -q check --read-data -r "$repo" ;;
    borg)
      timed borg init "$run" borg init -e repokey-blake2 "$repo"
      timed borg backup1 "$run" borg create --compression lz4 "$repo::a1" "$DATA"
      timed borg backup2 "$run" borg create --compression lz4 "$repo::a2" "$DATA"
      timed borg restore "$run" sh -c "cd '$target' && borg extract '$repo::a2'"
      timed borg check "$run" borg check --verify-data "$repo" ;;
  esac
  printf '%s\t%s\t%s\t%s\t0\n' "$tool" size "$run" "$(du -sb "$repo" | cut -f1)" >> "$results"
  # Restores must be byte-identical to the source.
  if ! diff -rq "$DATA" "$target$DATA" >/dev/null 2>&1; then echo "RESTORE MISMATCH: $tool" >&2; exit 1; fi
  rm -rf "$target"
}

echo "dataset: $DATA ($(du -sb "$DATA" | cut -f1) bytes, $(find "$DATA" -type f | wc -l) files); $(nproc) cores"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq 1 "$RUNS"); do
  for tool in $TOOLS; do one "$tool" "$run"; done
done
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$results" "$DATA" <<'EOF'
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
data_bytes = sum(__import__("os").path.getsize(__import__("os").path.join(d, f))
                 for d, _, fs in __import__("os").walk(sys.argv[2]) for f in fs)
t = collections.defaultdict(list); rss = collections.defaultdict(list)
for tool, step, run, secs, kb in rows:
    t[(tool, step)].append(float(secs)); rss[(tool, step)].append(int(kb))
tools = list(dict.fromkeys(r[0] for r in rows))
med = lambda tool, step: statistics.median(t[(tool, step)]) if t.get((tool, step)) else float("nan")
steps = [("init+backup1", None), ("backup2", "backup2"), ("restore", "restore"), ("check", "check")]
def peak(tool):
    return max(max(rss[(tool, s)]) for s in ("init", "backup1", "backup2", "restore", "check") if rss.get((tool, s)))
def secs(tool, step):
    return med(tool, "init") + med(tool, "backup1") if step == "init+backup1" else med(tool, step)
print("\nmedian wall seconds (MB/s of the %.0f MB dataset)" % (data_bytes / 1e6))
print("%-10s" % "tool" + "".join("%20s" % s for s, _ in steps) + "%14s%14s" % ("repo MB", "peak RSS MB"))
for tool in tools:
    line = "%-10s" % tool
    for s, _ in steps:
        x = secs(tool, s); line += "%12.2f (%5.0f)" % (x, data_bytes / 1e6 / x)
    line += "%14.1f%14.1f" % (med(tool, "size") / 1e6, peak(tool) / 1024)
    print(line)
for peer in ("restic", "borg"):
    if peer not in tools: continue
    for mine in [x for x in tools if x.startswith("dlc")]:
        print("\nthroughput %s vs %s (peer seconds / dlc seconds; >= 2 is the target vs restic):" % (mine, peer))
        print("  " + "  ".join("%s %.2fx" % (s, secs(peer, s) / secs(mine, s)) for s, _ in steps)
              + "  | backup1 alone %.2fx" % (med(peer, "backup1") / med(mine, "backup1"))
              + "  | repo size %.3f of %s" % (med(mine, "size") / med(peer, "size"), peer)
              + "  | peak RSS %.2f of %s" % (peak(mine) / peak(peer), peer))
EOF
