#!/usr/bin/env bash
# The freeze a client sees during a tcprelay live migration: HASTACK_RELAY_MOVES moves (default
# 10) back and forth between two namespace nodes, HASTACK_RELAY_CONNECTIONS connections (default
# 100) from a third namespace each writing a numbered line every 20 ms through the VIP to a socat
# echo. The agent is driven as Pacemaker drives it (migrate_to, migrate_from, stop). A client's
# pause = the longest time between two consecutive answers on its connection. The harness is the
# release build of the integration test `tcprelay::tcprelay_bench_freeze_per_move` (ignored by
# the test runs); it also asserts that every connection survives whole.
#
# Usage (root): bench/tcprelay.sh. Needs iproute2 and socat.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bench/tcprelay.sh: needs root (network namespaces, TCP_REPAIR)" >&2; exit 1; }
for tool in ip socat; do
  command -v "$tool" >/dev/null || { echo "bench/tcprelay.sh: $tool is not installed" >&2; exit 1; }
done
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); kernel $(uname -r); $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo test --release --test main -- --ignored --exact tcprelay::tcprelay_bench_freeze_per_move --nocapture 2>&1 |
  grep -E '^BENCH|test result|panicked' || true
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
