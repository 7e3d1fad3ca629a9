#!/usr/bin/env bash
# The lab's failover benchmark side by side (issue 13, README "The lab"): for each cell, `hastack
# lab up` with that agent set and Corosync timing, `hastack lab bench RUNS --scenario cut` (power
# cuts of the node running the data layers, timed from Pacemaker's own log), `hastack lab down`.
#
#   RUNS=20 CELLS="hastack:fast clusterlabs:fast" bench/lab-failover.sh [OUTDIR]
#
# A cell is AGENTS:TIMING: AGENTS hastack or clusterlabs (`lab up --agents`); TIMING fast
# (`--token 1000ms --consensus 200ms`, the 4 s target's) or default (Corosync's: token 3000 ms,
# consensus 3600 ms). Each cell's whole output, with the load average before `up`, before the
# bench and after it, goes to OUTDIR/AGENTS-TIMING.txt (default OUTDIR
# /var/tmp/hastack-lab-failover/DATE). Needs root; BIN defaults to target/release/hastack, else
# debug. The lab is removed however a cell ends.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
bin=${BIN:-$target/release/hastack}
[ -x "$bin" ] || bin=$target/debug/hastack
bin=$(realpath "$bin")
runs=${RUNS:-20}
cells=${CELLS:-hastack:fast clusterlabs:fast}
name=${LAB_NAME:-lbf}
out=${1:-/var/tmp/hastack-lab-failover/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
trap '"$bin" lab --name "$name" down >/dev/null 2>&1 || true' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
for cell in $cells; do
	agents=${cell%%:*}
	timing=${cell#*:}
	case $timing in
	fast) flags=(--token 1000ms --consensus 200ms) ;;
	default) flags=() ;;
	*) echo "cell $cell: timing must be fast or default" >&2; exit 2 ;;
	esac
	log=$out/$agents-$timing.txt
	echo "# $(date -u +%FT%TZ) cell $cell, $runs cuts, $bin; load before up: $(load)" >"$log"
	"$bin" lab --name "$name" up "${flags[@]}" --agents "$agents" >>"$log" 2>&1
	echo "# $(date -u +%FT%TZ) load before the bench: $(load)" >>"$log"
	"$bin" lab --name "$name" bench "$runs" --scenario cut >>"$log" 2>&1
	echo "# $(date -u +%FT%TZ) load after the bench: $(load)" >>"$log"
	"$bin" lab --name "$name" down >>"$log" 2>&1
	echo "== $cell ($log)"
	sed -n '/^== power cut of the node running the data layers/,/^$/p' "$log" | awk 'NR == 1 || /^step|first transaction|fencing confirmed|peer lost/'
	grep -E '^(missing|duplicated) ' "$log" || true
done
