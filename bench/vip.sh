#!/usr/bin/env bash
# Start latency and monitor cost of `vip` against ClusterLabs' IPaddr2 on the same virtual IP, side
# by side with hyperfine, inside two network namespaces this script creates (and removes on exit):
# the host, whose eth0 is a veth, and a peer holding the other end (nobody there owns the address).
# Start: wall time from exec to exit for a free address, the address removed again before each run
# (hyperfine --prepare, not timed); a failover waits for exactly this. Monitor: wall time per call,
# and CPU per call = user + system time of the measured command and its children (hyperfine's
# rusage), from the JSON export. /bin/true is the floor (process start).
#
# Usage (root): bench/vip.sh [path/to/hastack]   (default: target/release/hastack; build it with
# `cargo build --release` first). Needs hyperfine, jq, iproute2, resource-agents.
set -euo pipefail

bin=${1:-${CARGO_TARGET_DIR:-target}/release/hastack}
bin=$(readlink -f "$bin")
ipaddr2=/usr/lib/ocf/resource.d/heartbeat/IPaddr2
runs=${RUNS:-200}
[ "$(id -u)" -eq 0 ] || { echo "bench/vip.sh: needs root (network namespace)" >&2; exit 1; }
for tool in hyperfine jq ip; do
  command -v "$tool" >/dev/null || { echo "bench/vip.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench/vip.sh: no binary at $bin (cargo build --release)" >&2; exit 1; }
[ -x "$ipaddr2" ] || { echo "bench/vip.sh: $ipaddr2 missing (Debian package resource-agents)" >&2; exit 1; }

ns=hstbenchvip$$
peer=hstbenchvipp$$
work=$(mktemp -d)
cleanup() {
  ip netns delete "$ns" 2>/dev/null || true
  ip netns delete "$peer" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A host with eth0, a veth whose other end is up in the peer namespace (a carrier, and a LAN on
# which the probes go unanswered).
ip netns add "$ns"
ip netns add "$peer"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth0p netns "$peer"
ip -n "$peer" link set eth0p up
ip -n "$peer" addr add 10.213.0.2/24 dev eth0p
ip -n "$ns" link set eth0 up
ip -n "$ns" addr add 10.213.0.1/24 dev eth0

ln -s "$bin" "$work/vip"
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=bench-vip
export OCF_RESKEY_ip=10.213.0.50 OCF_RESKEY_cidr_netmask=24 OCF_RESKEY_nic=eth0
export OCF_RESKEY_CRM_meta_interval=10000 OCF_RESKEY_CRM_meta_timeout=20000

# Start of a free address, each agent from a clean state (its own stop before every run).
ip netns exec "$ns" hyperfine -N --warmup 3 --min-runs "${START_RUNS:-30}" --export-json "$work/start.json" \
  --prepare "$work/vip stop" --command-name "vip start" "$work/vip start" \
  --output null
ip netns exec "$ns" "$work/vip" stop 2>/dev/null
ip netns exec "$ns" hyperfine -N --warmup 3 --min-runs "${START_RUNS:-30}" --export-json "$work/start-ra.json" \
  --prepare "$ipaddr2 stop" --command-name "IPaddr2 start" "$ipaddr2 start" \
  --output null
ip netns exec "$ns" "$ipaddr2" stop >/dev/null 2>&1

echo
echo "| start of a free address | wall ms (mean ± σ) | median | min | max |"
echo "|---|---|---|---|---|"
jq -s -r '.[].results[] | "| \(.command) | \(.mean*1000*10|round/10) ± \(.stddev*1000*10|round/10) | \(.median*1000*10|round/10) | \(.min*1000*10|round/10) | \(.max*1000*10|round/10) |"' \
  "$work/start.json" "$work/start-ra.json"

ip netns exec "$ns" "$work/vip" start 2>/dev/null
# Both agents must see the address as running (0) before we time them.
ip netns exec "$ns" "$work/vip" monitor 2>/dev/null
ip netns exec "$ns" "$ipaddr2" monitor >/dev/null 2>&1 || { echo "IPaddr2 monitor does not see the VIP" >&2; exit 1; }

# hyperfine runs inside the namespace, so `ip netns exec` is not part of what is measured.
ip netns exec "$ns" hyperfine -N --warmup 10 --min-runs "$runs" --export-json "$work/result.json" \
  --command-name "vip monitor" "$work/vip monitor" \
  --command-name "IPaddr2 monitor" "$ipaddr2 monitor" \
  --command-name "/bin/true" "/bin/true" \
  --output null

echo
echo "| command | wall ms (mean ± σ) | CPU ms per call (user + sys) |"
echo "|---|---|---|"
jq -r '.results[] | "| \(.command) | \(.mean*1000*100|round/100) ± \(.stddev*1000*100|round/100) | \((.user+.system)*1000*100|round/100) |"' "$work/result.json"
jq -r '
  (.results[] | select(.command=="vip monitor") | .user+.system) as $vip |
  (.results[] | select(.command=="IPaddr2 monitor") | .user+.system) as $ra |
  (.results[] | select(.command=="/bin/true") | .user+.system) as $true |
  "\nCPU: IPaddr2 / vip = \($ra/$vip*10|round/10)x; vip / /bin/true = \($vip/$true*10|round/10)x"' "$work/result.json"

ip netns exec "$ns" "$work/vip" stop 2>/dev/null
