#!/usr/bin/env bash
# A warm-standby promote against a cold start, with hastack's activemq agent and the real broker
# (README "ActiveMQ as a warm standby"): the store on an ext4 loop device mounted on a root-owned
# 0755 mount point, holding MESSAGES (default 2000) persistent 1 KB messages. Warm: `start` as a
# promotable clone with the partition away, a pause, then `mount` + `promote` timed. Cold: the
# primitive's `start` with the partition mounted, timed. Each with the JVM's CPU in that time.
# Needs root, the activemq package and e2fsprogs; RUNS (default 5) rounds, alternated; BIN
# (default target/release/hastack, else debug).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
bin=${BIN:-$target/release/hastack}
[ -x "$bin" ] || bin=$target/debug/hastack
bin=$(realpath "$bin")
runs=${RUNS:-5}
work=$(mktemp -d /tmp/hst-bench-standby.XXXXXX)
chmod 755 "$work"
"$bin" install --root "$work/root" >/dev/null
agent=$work/root/usr/lib/ocf/resource.d/hastack/activemq
part=$work/part
install -d -m 755 "$part" "$work/conf"
truncate -s 256M "$work/disk.img"
mkfs.ext4 -q -F "$work/disk.img"
loop=$(losetup --find --show "$work/disk.img")
cleanup() {
	set +e
	"$agent" stop >/dev/null 2>&1
	mountpoint -q "$part" && umount "$part"
	losetup -d "$loop"
	rm -rf "$work"
}
trap cleanup EXIT
mount "$loop" "$part"
install -d -o activemq -g activemq "$part/data"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stomp=$(port)
openwire=$(port)
. bench/broker-conf.sh # (the working directory is the repository)
broker_conf "$work/conf" hst "$openwire" "$stomp" '<locker><shared-file-locker lockAcquireSleepInterval="100"/></locker>'
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=hst-bench-standby OCF_RESKEY_CRM_meta_timeout=120000 \
	OCF_RESKEY_config=$work/conf/activemq.xml OCF_RESKEY_data_dir=$part/data OCF_RESKEY_stomp_port=$stomp \
	OCF_RESKEY_log=$work/broker.log OCF_RESKEY_java_opts="-Xms32m -Xmx128m -XX:TieredStopAtLevel=1"
now() { date +%s.%N; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
jvm() { awk '{print $1}' "/run/hastack/activemq-$OCF_RESOURCE_INSTANCE.id"; }
hz=$(getconf CLK_TCK)

# The store's messages, sent once through a cold broker.
"$agent" start 2>/dev/null
python3 - "$stomp" "${MESSAGES:-2000}" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port)); buf = b""
def frame(cmd, headers, body=""):
    s.sendall((cmd + "\n" + "".join(f"{k}:{v}\n" for k, v in headers.items()) + "\n" + body).encode() + b"\0")
def read():
    global buf
    while b"\0" not in buf:
        buf += s.recv(65536)
    f, _, buf = buf.partition(b"\0"); buf = buf.lstrip(b"\n"); return f
frame("CONNECT", {"accept-version": "1.2", "host": "localhost"}); assert read().startswith(b"CONNECTED")
for i in range(n):
    frame("SEND", {"destination": "/queue/orders", "persistent": "true", "receipt": f"r{i}"}, "x" * 1000)
    assert read().startswith(b"RECEIPT")
PY
"$agent" stop 2>/dev/null
umount "$part"

printf 'round\tform\twall_s\tjvm_cpu_s\n'
for i in $(seq "$runs"); do
	# Warm: the standby waits with the partition away; the pause lets it settle.
	OCF_RESKEY_CRM_meta_promotable=true OCF_RESKEY_CRM_meta_promoted_max=1 "$agent" start 2>/dev/null
	pid=$(jvm)
	sleep 5
	c0=$(ticks "$pid")
	t0=$(now)
	mount "$loop" "$part"
	OCF_RESKEY_CRM_meta_promotable=true OCF_RESKEY_CRM_meta_promoted_max=1 "$agent" promote 2>/dev/null
	t1=$(now)
	c1=$(ticks "$pid")
	printf '%s\twarm\t%.3f\t%.2f\n' "$i" "$(echo "$t1 - $t0" | bc)" "$(echo "($c1 - $c0) / $hz" | bc -l)"
	OCF_RESKEY_CRM_meta_promotable=true OCF_RESKEY_CRM_meta_promoted_max=1 "$agent" stop 2>/dev/null
	# Cold: the primitive's start on the mounted partition.
	t0=$(now)
	"$agent" start 2>/dev/null
	t1=$(now)
	c1=$(ticks "$(jvm)")
	printf '%s\tcold\t%.3f\t%.2f\n' "$i" "$(echo "$t1 - $t0" | bc)" "$(echo "$c1 / $hz" | bc -l)"
	"$agent" stop 2>/dev/null
	umount "$part"
done
