#!/usr/bin/env bash
# Cost of one alert-agent run, with hyperfine:
#  - a routine event (a recurring monitor confirming "running"), which the agent ignores: the
#    target is at most 2x /bin/true (the decision comes before any set-up);
#  - a reported event (a failed monitor) for a console: crm_mon snapshot of a running two-node
#    stack (CIB_file, states made by crm_simulate), durable spool write, POST to a receiver on
#    127.0.0.1 answering 200: the target is under 2 s, CPU-light.
# CPU per call = user + system time of the command and its children (hyperfine's JSON).
#
# Usage: bench/alert.sh [path/to/hastack]   (default: target/release/hastack; build it with
# `cargo build --release` first). Needs hyperfine, jq, python3, pacemaker-cli-utils.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${1:-${CARGO_TARGET_DIR:-target}/release/hastack}
bin=$(readlink -f "$bin")
runs=${RUNS:-300}
for tool in hyperfine jq python3 crm_mon crm_simulate; do
  command -v "$tool" >/dev/null || { echo "bench/alert.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench/alert.sh: no binary at $bin (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d)
receiver=
cleanup() { [ -n "$receiver" ] && kill "$receiver" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/lib"
ln -s "$bin" "$work/lib/alert"

# A running two-node stack as crm_mon will read it.
"$bin" config render --format cib crm-config/stack.toml >"$work/cib.xml"
crm_simulate --xml-file "$work/cib.xml" --in-place --quorum true --node-up node1 --node-up node2 --simulate >/dev/null
for _ in 1 2 3 4; do crm_simulate --xml-file "$work/cib.xml" --in-place --simulate >/dev/null; done

# The console: answers 200 to every POST (a thread per request, nothing stored).
cat >"$work/receiver.py" <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self.send_response(200); self.send_header('Content-Length', '0'); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
python3 "$work/receiver.py" >"$work/port" &
receiver=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
port=$(cat "$work/port")

common() {
  export PATH=/usr/sbin:/usr/bin:/sbin:/bin CRM_alert_version=2.1.5 CRM_alert_kind=resource \
    CRM_alert_node=node1 CRM_alert_rsc=haproxy CRM_alert_task=monitor CRM_alert_interval=10000 \
    CRM_alert_target_rc=0 CRM_alert_status=0 CRM_alert_exec_time=3 CRM_alert_node_sequence=7 \
    CRM_alert_timestamp_epoch=1767225600 CRM_alert_timestamp_usec=000001 CRM_alert_timestamp=00:00:00.000001 \
    CRM_alert_recipient=http://127.0.0.1:$port/api/v1/reports spool_dir=$work/spool CIB_file=$work/cib.xml
}

common
export CRM_alert_rc=0 CRM_alert_desc=ok
hyperfine -N --warmup 20 --min-runs "$runs" --export-json "$work/routine.json" \
  --command-name "alert, routine event (ignored)" "$work/lib/alert" \
  --command-name "/bin/true" "/bin/true" \
  --output null

# Page faults are deterministic where CPU time is noisy on a shared machine: the agent's start is
# the dynamic loader relocating a large PIE binary, not its own work.
if command -v perf >/dev/null; then
  for c in /bin/true "$work/lib/alert"; do
    faults=$(perf stat -r 100 -x, -e page-faults "$c" 2>&1 >/dev/null | cut -d, -f1)
    echo "page faults per run: $faults  $c"
  done
fi

export CRM_alert_rc=7 CRM_alert_desc="not running"
hyperfine -N --warmup 3 --min-runs 30 --export-json "$work/reported.json" \
  --command-name "alert, failed monitor (snapshot, spool, POST)" "$work/lib/alert" \
  --command-name "crm_mon --output-as=xml --inactive" "crm_mon --output-as=xml --inactive" \
  --output null
left=$(find "$work/spool" -name '*.report' | wc -l)
[ "$left" -eq 0 ] || { echo "bench/alert.sh: $left reports were not delivered" >&2; exit 1; }

echo
echo "| command | wall ms (mean ± σ) | CPU ms per call (user + sys) |"
echo "|---|---|---|"
jq -s -r '.[].results[] | "| \(.command) | \(.mean*1000*100|round/100) ± \(.stddev*1000*100|round/100) | \((.user+.system)*1000*100|round/100) |"' \
  "$work/routine.json" "$work/reported.json"
jq -r '
  (.results[] | select(.command|startswith("alert")) | .user+.system) as $a |
  (.results[] | select(.command=="/bin/true") | .user+.system) as $t |
  (.results[] | select(.command|startswith("alert")) | .mean) as $aw |
  (.results[] | select(.command=="/bin/true") | .mean) as $tw |
  "\nroutine event / /bin/true: CPU \($a/$t*100|round/100)x, wall \($aw/$tw*100|round/100)x (target: at most 2x)"' "$work/routine.json"
