#!/usr/bin/env bash
# Runs every benchmark against the release binary (make bench builds it first; each script
# finds it under ${CARGO_TARGET_DIR:-target}/release). Each script prints its figures;
# BENCHMARKS.md records them with the date and the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
for script in vip filesystem front data fence alert tcprelay console; do
  echo "== bench/$script.sh"
  "bench/$script.sh"
done
