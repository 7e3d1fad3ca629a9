#!/usr/bin/env bash
# Fence time, fence_ups against cluster-glue's apcsmart STONITH plugin (the only other APC Smart
# serial fencer), on the same simulated UPS (`hastack ups-sim` on a pseudo-terminal):
# - off: from the request to the answer; both agents answer only after reading the UPS's state
#   back, so this is the time to a confirmed load-off. Before each timed run the load is turned
#   back on (hyperfine --prepare, not timed).
# - reboot (what Pacemaker asks for): from the request to the success answer; fence_ups `reboot`
#   against cluster-glue's `reset` (`@000` on line power). Before each run the load is on again
#   (fence_ups `on` waits for a power-on still holding the port; after a reset the UPS wakes up by
#   itself).
#
# Usage (root, for the UUCP lock in /var/lock): [SIM_BIN=path] bench/fence.sh [path/to/hastack]
# (default: target/release/hastack; `cargo build --release` first). Needs hyperfine, jq,
# cluster-glue (`stonith`).
set -euo pipefail

bin=${1:-${CARGO_TARGET_DIR:-target}/release/hastack}
bin=$(readlink -f "$bin")
runs=${RUNS:-10}
# cluster-glue's reset waits the UPS's 20 s grace period: fewer runs.
reset_runs=${RESET_RUNS:-3}
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
# SIM_BIN: the simulator from another build (e.g. measuring an older fence_ups on today's UPS).
sim_bin=$(readlink -f "${SIM_BIN:-$bin}")
"$sim_bin" ups-sim --link "$work/ups" >"$work/sim.log" &
sim_pid=$!
for _ in $(seq 100); do [ -e "$work/ups" ] && break; sleep 0.05; done
[ -e "$work/ups" ] || { echo "bench/fence.sh: the simulator did not start" >&2; exit 1; }

on="$work/fence_ups -o on --serial-port $work/ups"
hyperfine -N --runs "$runs" --prepare "$on" --export-json "$work/result.json" \
  --command-name "fence_ups off" "$work/fence_ups -o off --serial-port $work/ups --ups-serial QS0000000001" \
  --command-name "cluster-glue apcsmart off" "stonith -t apcsmart ttydev=$work/ups hostlist=node2 -T off node2" \
  --output null

offs=$(grep -c '^load off' "$work/sim.log" || true)

status="$work/fence_ups -o status --serial-port $work/ups"
hyperfine -N --runs "$runs" --prepare "$on" --export-json "$work/reboot.json" \
  --command-name "fence_ups reboot" "$work/fence_ups -o reboot --serial-port $work/ups --ups-serial QS0000000001" \
  --output null
hyperfine -N --runs "$reset_runs" --prepare "sh -c 'until $status >/dev/null 2>&1; do sleep 0.2; done'" \
  --export-json "$work/reset.json" \
  --command-name "cluster-glue apcsmart reset" "stonith -t apcsmart ttydev=$work/ups hostlist=node2 -T reset node2" \
  --output null
# The last power-on (fence_ups) or wake-up (cluster-glue) before the simulator goes.
for _ in $(seq 150); do $status >/dev/null 2>&1 && break; sleep 0.2; done

row='.results[] | "| \(.command) | \(.mean*1000|round/1000) ± \(.stddev*1000|round/1000) | \(.min*1000|round/1000) | \(.max*1000|round/1000) |"'
echo
echo "| agent | request to confirmed load-off, s (mean ± σ) | min | max |"
echo "|---|---|---|---|"
jq -r "$row" "$work/result.json"
echo
echo "The simulator saw $offs load-off events (expected $((2 * runs)): every timed run cut the load)."
echo
echo "| agent | reboot request to success answer, s (mean ± σ) | min | max |"
echo "|---|---|---|---|"
jq -s -r ".[] | $row" "$work/reboot.json" "$work/reset.json"
echo
echo "Load-off / load-on events seen by the simulator in all: $(grep -c '^load off' "$work/sim.log") / $(grep -c '^load on' "$work/sim.log")"
grep -c '^eeprom write' "$work/sim.log" | xargs -I{} echo "EEPROM writes seen by the simulator: {} (all from cluster-glue's delay walk)"
