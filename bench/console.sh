#!/usr/bin/env bash
# The console's benchmark.
#  - sqlite, postgresql: ingest throughput (reports/s over HTTP), fleet-page and cluster-page latency
#    (the console's own time, Server-Timing) with 1,000 clusters and 1,000,000 stored events, on SQLite
#    and on PostgreSQL 15 (a server of its own on loopback, fsync on). An ignored test of the one
#    test binary (tests/console/bench.rs), built in release mode.
#  - startup: what the console costs the agents (it is its own binary, hastack-console, so the
#    agents' binary should not grow). A "before" hastack (BEFORE=path to a release binary, e.g.
#    one with the console linked in; or else the tree of BASE, default main, from `git archive`,
#    built in release mode with this target directory's dependencies) against this tree's: file
#    size, relocations, and start-up of an agent as Pacemaker runs it (`vip monitor` of an address
#    that is not there: 7; `vip meta-data`), with hyperfine in a network namespace of its own, and
#    the alert agent's routine event against /bin/true (target: at most 2x).
#
# Usage (root: initdb runs as postgres; the namespace): bench/console.sh [sqlite|postgresql|startup ...]
# Sizes: BENCH_CLUSTERS, BENCH_EVENTS, BENCH_REPORTS (defaults 1000, 1000000, 20000); BENCH_CLIENTS,
# the clients sending reports at once (default 8).
# Needs pacemaker-cli-utils (crm_simulate makes the reports), postgresql, hyperfine, jq.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
stores=("$@")
[ ${#stores[@]} -gt 0 ] || stores=(sqlite postgresql startup)

startup() {
  local base=${BASE:-main}
  local work ns
  work=$(mktemp -d)
  ns=hstbenchcon$$
  trap 'ip netns delete "$ns" 2>/dev/null || true; rm -rf "$work"' RETURN
  mkdir -p "$work/before" "$work/after" "$work/src"
  cargo build --release --locked --quiet --bins
  cp "$target/release/hastack" "$work/after/hastack"
  if [ -n "${BEFORE:-}" ]; then
    # A release hastack built earlier (e.g. one with the console linked in), as it is.
    echo "before: $BEFORE"
    cp "$BEFORE" "$work/before/hastack"
  else
    echo "before: $(git rev-parse --short "$base") ($(git log -1 --format=%s "$base" | cut -c1-70))"
    # BASE's tree, built with this target directory's dependencies (its own crate's artifacts
    # replace this tree's: the next build of this tree rebuilds them).
    git archive "$base" | tar -x -C "$work/src"
    (cd "$work/src" && CARGO_TARGET_DIR=$target cargo build --release --locked --quiet --bin hastack)
    cp "$target/release/hastack" "$work/before/hastack"
  fi
  ln -s hastack "$work/before/vip"
  ln -s hastack "$work/after/vip"
  local b a
  b=$(stat -c %s "$work/before/hastack")
  a=$(stat -c %s "$work/after/hastack")
  relocs() { readelf -r "$1" | grep -c R_X86_64_RELATIVE || true; }
  echo "| binary | size | relative relocations |"
  echo "|---|---|---|"
  echo "| before: hastack | $((b / 1024)) KiB | $(relocs "$work/before/hastack") |"
  echo "| this tree: hastack | $((a / 1024)) KiB ($(((a - b) / 1024)) KiB, $((100 * (a - b) / b)) %) | $(relocs "$work/after/hastack") |"
  echo "| this tree: hastack-console | $(($(stat -c %s "$target/release/hastack-console") / 1024)) KiB | $(relocs "$target/release/hastack-console") |"

  ip netns add "$ns"
  ip -n "$ns" link set lo up
  export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=bench-vip
  export OCF_RESKEY_ip=10.213.0.50 OCF_RESKEY_cidr_netmask=24 OCF_RESKEY_nic=lo
  export OCF_RESKEY_CRM_meta_interval=10000 OCF_RESKEY_CRM_meta_timeout=20000
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "| agent call | before: wall / CPU | this tree: wall / CPU |"
  echo "|---|---|---|"
  for action in monitor meta-data; do
    ip netns exec "$ns" hyperfine -N -i --warmup 20 --runs "${RUNS:-300}" --export-json "$work/$action.json" \
      --command-name before "$work/before/vip $action" --command-name after "$work/after/vip $action" \
      --output null >/dev/null 2>&1
    row=$(jq -r '[.results[] | "\(.mean * 1000 | . * 100 | round / 100) ± \(.stddev * 1000 | . * 100 | round / 100) ms / \((.user + .system) * 1000 | . * 100 | round / 100) ms"] | join(" | ")' "$work/$action.json")
    echo "| vip $action | $row |"
  done
  # The alert agent's routine event (bench/alert.sh: at most 2x /bin/true) pays the dynamic
  # loader's relocations of the whole binary before its constructor decides: the console's code
  # is more of them.
  ln -s hastack "$work/before/alert"
  ln -s hastack "$work/after/alert"
  (
    export PATH=/usr/sbin:/usr/bin:/sbin:/bin CRM_alert_version=2.1.5 CRM_alert_kind=resource \
      CRM_alert_node=node1 CRM_alert_rsc=haproxy CRM_alert_task=monitor CRM_alert_interval=10000 \
      CRM_alert_target_rc=0 CRM_alert_status=0 CRM_alert_exec_time=3 CRM_alert_node_sequence=7 \
      CRM_alert_timestamp_epoch=1767225600 CRM_alert_timestamp_usec=000001 CRM_alert_rc=0 CRM_alert_desc=ok \
      CRM_alert_recipient=http://127.0.0.1:9/api/v1/reports spool_dir=$work/spool
    hyperfine -N --warmup 20 --runs "${RUNS:-300}" --export-json "$work/alert.json" \
      --command-name before "$work/before/alert" --command-name after "$work/after/alert" \
      --command-name true /bin/true --output null >/dev/null 2>&1
    row=$(jq -r '[.results[] | "\(.mean * 1000 | . * 100 | round / 100) ± \(.stddev * 1000 | . * 100 | round / 100) ms / \((.user + .system) * 1000 | . * 100 | round / 100) ms"] | join(" | ")' "$work/alert.json")
    echo
    echo "| call | before: wall / CPU | this tree: wall / CPU | /bin/true: wall / CPU |"
    echo "|---|---|---|---|"
    echo "| alert, routine event (ignored) | $row |"
    if command -v perf >/dev/null; then
      for c in "$work/before/alert" "$work/after/alert" /bin/true; do
        echo "page faults per run: $(perf stat -r 100 -x, -e page-faults "$c" 2>&1 >/dev/null | cut -d, -f1)  $c"
      done
    fi
  )
  [ ! -d "$work/spool" ] || [ -z "$(ls -A "$work/spool")" ] || { echo "bench/console.sh: the routine event was spooled" >&2; exit 1; }
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

for store in "${stores[@]}"; do
  echo "== console benchmark, $store"
  if [ "$store" = startup ]; then
    startup
    continue
  fi
  BENCH_STORE=$store cargo test --release --locked --test main -- --ignored --exact \
    console::bench::console_benchmark --nocapture --test-threads 1 2>&1 | grep -E '^(\||console benchmark|prefill)'
done
