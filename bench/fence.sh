#!/usr/bin/env bash
# Fence time: from the request to the confirmed load-off, fence_ups against cluster-glue's apcsmart
# STONITH plugin (the only other APC Smart serial fencer), on the same simulated UPS (`hastack
# ups-sim` on a pseudo-terminal). Both agents exit only after reading the UPS's state back, so the
# wall time of one `off` is the time to a confirmed load-off. Before each timed run the load is
# turned back on (hyperfine --prepare, not timed).
#
# Usage (root, for the UUCP lock in /var/lock): bench/fence.sh [path/to/hastack]
# (default: target/release/hastack; `cargo build --release` first). Needs hyperfine, jq,
# cluster-glue (`stonith`).
set -euo pipefail

bin=${1:-${CARGO_TARGET_DIR:-target}/release/hastack}
bin=$(readlink -f "$bin")
runs=${RUNS:-10}
[ "$(id -u)" -eq 0 ] || { echo "bench/fence.sh: needs root (UUCP lock files in /var/lock)" >&2; exit 1; }
for tool in hyperfine jq stonith; do
  command -v "$tool" >/dev/null || { echo "bench/fence.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench/fence.sh: no binary at $bin (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d)
sim_pid=
cleanup() {
  [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

ln -s "$bin" "$work/fence_ups"
"$bin" ups-sim --link "$work/ups" >"$work/sim.log" &
sim_pid=$!
for _ in $(seq 100); do [ -e "$work/ups" ] && break; sleep 0.05; done
[ -e "$work/ups" ] || { echo "bench/fence.sh: the simulator did not start" >&2; exit 1; }

on="$work/fence_ups -o on --serial-port $work/ups"
hyperfine -N --runs "$runs" --prepare "$on" --export-json "$work/result.json" \
  --command-name "fence_ups off" "$work/fence_ups -o off --serial-port $work/ups --ups-serial QS0000000001" \
  --command-name "cluster-glue apcsmart off" "stonith -t apcsmart ttydev=$work/ups hostlist=node2 -T off node2" \
  --output null

offs=$(grep -c '^load off' "$work/sim.log" || true)
echo
echo "| agent | request to confirmed load-off, s (mean ± σ) | min | max |"
echo "|---|---|---|---|"
jq -r '.results[] | "| \(.command) | \(.mean*1000|round/1000) ± \(.stddev*1000|round/1000) | \(.min*1000|round/1000) | \(.max*1000|round/1000) |"' "$work/result.json"
echo
echo "The simulator saw $offs load-off events (expected $((2 * runs)): every timed run cut the load)."
grep -c '^eeprom write' "$work/sim.log" | xargs -I{} echo "EEPROM writes seen by the simulator: {} (all from cluster-glue's delay walk)"
