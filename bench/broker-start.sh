#!/usr/bin/env bash
# Where an ActiveMQ start goes, with hastack's activemq agent, the lab's broker configuration
# (crm-config/lab.toml's java_opts, src/lab/services.rs's activemq.xml) and the real broker:
# the broker configured by activemq.xml (`config`, Spring/XBean) and by the same broker's
# `broker:` URI (`broker_uri`, ActiveMQ's BrokerFactory); clean starts and starts after kill -9
# (KahaDB recovery after an unclean stop, as after a power cut); without and with
# `class_archive` (AppCDS, one archive per form). Phases from the broker's own log timestamps:
# JVM + launcher (agent start → first log line), configuration (→ "Using Persistence Adapter":
# Spring/XBean for activemq.xml, next to nothing for a URI), KahaDB (→ "is starting"),
# connectors (→ "Connector stomp... started"), the agent's readiness probe (→ the agent's
# return), and the JVM's CPU at readiness. Needs root and the activemq package; RUNS (default
# 5) per cell; FORMS (default "xml uri"); BIN (default target/release/hastack, else debug).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
bin=${BIN:-$target/release/hastack}
[ -x "$bin" ] || bin=$target/debug/hastack
bin=$(realpath "$bin")
runs=${RUNS:-5}
work=$(mktemp -d /tmp/hst-bench-broker.XXXXXX)
chmod 755 "$work"
"$bin" install --root "$work/root" >/dev/null
agent=$work/root/usr/lib/ocf/resource.d/hastack/activemq
aq=$work/aq
install -d -o activemq -g activemq "$aq" "$aq/data" "$aq/cds"
stomp=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
openwire=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
. bench/broker-conf.sh # (the working directory is the repository)
broker_conf "$aq" lab "$openwire" "$stomp"
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=hst-bench-broker OCF_RESKEY_CRM_meta_timeout=120000 \
  OCF_RESKEY_data_dir=$aq/data OCF_RESKEY_stomp_port=$stomp OCF_RESKEY_log=$aq/broker.log
# The same broker as activemq.xml says (what src/lab/services.rs's broker_uri says for the lab).
uri="broker:(tcp://127.0.0.1:$openwire,stomp://127.0.0.1:$stomp)?useJmx=false&brokerName=lab"
opts="-Xms64m -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC" # lab.toml's
cleanup() { set +e; "$agent" stop >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT
broker_pid() { pgrep -f -- "-Dactivemq.data=$aq/data" | head -1; }

# One start; prints "phase seconds..." as a TSV row.
one() {
  local label=$1
  : >"$aq/broker.log"
  local t0; t0=$(date +%s.%N)
  "$agent" start >/dev/null 2>&1
  local t1; t1=$(date +%s.%N)
  local pid; pid=$(broker_pid)
  local cpu; cpu=$(awk '{print ($14+$15)/100}' "/proc/$pid/stat")
  python3 - "$label" "$t0" "$t1" "$cpu" "$aq/broker.log" <<'PY'
import sys, datetime
label, t0, t1, cpu, log = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
def at(marker):  # the first timestamped line with marker ("": the first log line)
    for line in open(log, errors="replace"):
        if marker in line and line[:2] == "20":
            d = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=datetime.timezone.utc)
            return d.timestamp()
    return float("nan")
marks = [at(""), at("Using Persistence Adapter"), at("is starting"), at("Connector stomp"), t1]
prev, cells = t0, []
for m in marks:
    cells.append(f"{m - prev:.2f}")
    prev = m
print("\t".join([label] + cells + [f"{t1 - t0:.2f}", cpu]))
PY
}

echo "# $(date -u '+%F %T') UTC, $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg), $bin"
printf 'cell\tJVM+launcher\tconfiguration\tKahaDB\tconnectors\tprobe\ttotal s\tJVM CPU s\n'
export OCF_RESKEY_java_opts="$opts"
for form in ${FORMS:-xml uri}; do
  unset OCF_RESKEY_class_archive OCF_RESKEY_config OCF_RESKEY_broker_uri OCF_RESKEY_conf_dir
  case $form in
  xml) export OCF_RESKEY_config=$aq/activemq.xml ;;
  uri) export OCF_RESKEY_broker_uri=$uri OCF_RESKEY_conf_dir=$aq ;;
  *) echo "FORMS: xml or uri, not $form" >&2; exit 2 ;;
  esac
  "$agent" start >/dev/null 2>&1; "$agent" stop >/dev/null 2>&1 # the store exists
  for archive in none cds; do
    if [ $archive = cds ]; then
      export OCF_RESKEY_class_archive=$aq/cds/broker-$form.jsa
      "$agent" start >/dev/null 2>&1; "$agent" stop >/dev/null 2>&1 # the clean stop writes it
    fi
    for i in $(seq "$runs"); do
      one "$form, after a clean stop, archive $archive"
      kill -9 "$(broker_pid)"; while [ -n "$(broker_pid)" ]; do sleep 0.05; done
      one "$form, after kill -9, archive $archive"
      "$agent" stop >/dev/null 2>&1
    done
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
