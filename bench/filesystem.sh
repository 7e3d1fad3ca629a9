#!/usr/bin/env bash
# Monitor cost of `filesystem` against ClusterLabs' Filesystem on the same mount, at depths
# 0, 10 and 20: wall time (hyperfine) and CPU per call (user + system, from hyperfine's JSON).
# Needs root (loop device, mount), hyperfine, resource-agents, e2fsprogs; builds the release
# binary. Usage: bench/filesystem.sh [RUNS]   (results go to stdout; copy them to BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --locked --quiet
bin=$(realpath "$target/release/hastack")
shell_agent=/usr/lib/ocf/resource.d/heartbeat/Filesystem

work=$(mktemp -d /tmp/hst-bench-fs.XXXXXX)
dev=""
cleanup() {
  if [ -n "$dev" ]; then
    umount "$work/mnt" 2>/dev/null || true
    losetup -d "$dev" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

truncate -s 64M "$work/img"
mkfs.ext4 -q "$work/img"
dev=$(losetup --find --show "$work/img")
ln -s "$bin" "$work/filesystem" # argv[0] dispatch, as under /usr/lib/ocf/resource.d/hastack

export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=benchfs OCF_RESKEY_CRM_meta_timeout=20000
export OCF_RESKEY_CRM_meta_interval=20000
export OCF_RESKEY_device=$dev OCF_RESKEY_directory=$work/mnt OCF_RESKEY_fstype=ext4
"$work/filesystem" start 2>/dev/null

for depth in 0 10 20; do
  export OCF_CHECK_LEVEL=$depth
  # Both must answer 0 (running) before they are timed.
  "$work/filesystem" monitor 2>/dev/null
  "$shell_agent" monitor 2>/dev/null
  echo "## monitor, OCF_CHECK_LEVEL=$depth"
  hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/d$depth.json" \
    -n "filesystem monitor" "$work/filesystem monitor" \
    -n "Filesystem monitor" "$shell_agent monitor" \
    -n "/bin/true" "/bin/true" 2>/dev/null
  python3 - "$work/d$depth.json" <<'EOF'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
print(f"{'command':<22} {'wall ms':>9} {'CPU ms (user+sys)':>18}")
cpu = {}
for r in results:
    cpu[r["command"]] = (r["user"] + r["system"]) * 1000
    print(f"{r['command']:<22} {r['mean']*1000:>9.2f} {cpu[r['command']]:>18.2f}")
print(f"CPU ratio Filesystem / filesystem: {cpu['Filesystem monitor'] / cpu['filesystem monitor']:.0f}x")
EOF
  echo
done
unset OCF_CHECK_LEVEL
"$work/filesystem" stop 2>/dev/null
