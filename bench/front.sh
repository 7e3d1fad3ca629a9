#!/usr/bin/env bash
# Monitor cost of the front-layer agents against the ClusterLabs shell agents (apache, nginx,
# tomcat) on the same running service, side by side with hyperfine. Starts its own nginx, httpd
# and Tomcat on loopback ports 18950-18952 with configurations in a temporary directory, stops
# them at the end. Prints a Markdown table (wall and CPU = user + system per call).
#
#   bench/front.sh            # builds the release binary first
#   RUNS=200 bench/front.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-100}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
HASTACK=$(realpath "$TARGET/release/hastack")
HB=/usr/lib/ocf/resource.d/heartbeat
for p in hyperfine nginx apache2 java python3; do
  command -v "$p" >/dev/null || { echo "front.sh: $p is missing (tests/setup/install-deps.sh)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/hst-bench-front.XXXXXX)
chmod 755 "$T"
mkdir -p "$T/bin" "$T/ngx/tmp" "$T/apa/htdocs" "$T/apa/run" "$T/tc"
for a in nginx apache tomcat; do ln -s "$HASTACK" "$T/bin/$a"; done

export OCF_ROOT=/usr/lib/ocf OCF_RESKEY_CRM_meta_timeout=20000 OCF_RESKEY_CRM_meta_interval=10000

cleanup() {
  for a in nginx apache tomcat; do
    # shellcheck disable=SC2046
    env $(cat "$T/$a.env" 2>/dev/null) "$T/bin/$a" stop >/dev/null 2>&1 || true
  done
  rm -rf "$T"
}
trap cleanup EXIT

# --- the services, started by our agents ---------------------------------------------------
cat >"$T/ngx/nginx.conf" <<EOF
pid $T/ngx/nginx.pid;
error_log $T/ngx/error.log;
worker_processes 2;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $T/ngx/tmp; proxy_temp_path $T/ngx/tmp; fastcgi_temp_path $T/ngx/tmp;
  uwsgi_temp_path $T/ngx/tmp; scgi_temp_path $T/ngx/tmp;
  server { listen 127.0.0.1:18950; location = / { return 200 "<html>ok</html>\n"; } location /status { stub_status; } }
}
EOF
M=/usr/lib/apache2/modules
cat >"$T/apa/httpd.conf" <<EOF
LoadModule mpm_event_module $M/mod_mpm_event.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule dir_module $M/mod_dir.so
LoadModule status_module $M/mod_status.so
ServerName localhost
Listen 127.0.0.1:18951
PidFile $T/apa/httpd.pid
ErrorLog $T/apa/error.log
DefaultRuntimeDir $T/apa/run
User www-data
Group www-data
DocumentRoot $T/apa/htdocs
DirectoryIndex index.html
<Directory $T/apa/htdocs>
  Require all granted
</Directory>
<Location /server-status>
  SetHandler server-status
  Require all granted
</Location>
EOF
echo '<html>ok</html>' >"$T/apa/htdocs/index.html"
cp -rL /var/lib/tomcat10/conf/ "$T/tc/conf"
mkdir -p "$T/tc/webapps/ROOT" "$T/tc/logs" "$T/tc/work" "$T/tc/temp"
echo '<html>ok</html>' >"$T/tc/webapps/ROOT/index.html"
cat >"$T/tc/conf/server.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN"><Service name="Catalina">
<Connector port="18952" address="127.0.0.1" protocol="HTTP/1.1"/>
<Engine name="Catalina" defaultHost="localhost"><Host name="localhost" appBase="webapps" autoDeploy="false"/></Engine>
</Service></Server>
EOF
chown -R tomcat:tomcat "$T/tc"

# Parameters of both agents for the same instance (each ignores the other's names).
cat >"$T/nginx.env" <<EOF
OCF_RESOURCE_INSTANCE=hst-bench-nginx
OCF_RESKEY_configfile=$T/ngx/nginx.conf
OCF_RESKEY_httpd=/usr/sbin/nginx
OCF_RESKEY_status10url=http://127.0.0.1:18950/status
OCF_RESKEY_statusurl=http://127.0.0.1:18950/status
EOF
cat >"$T/apache.env" <<EOF
OCF_RESOURCE_INSTANCE=hst-bench-apache
OCF_RESKEY_configfile=$T/apa/httpd.conf
OCF_RESKEY_httpd=/usr/sbin/apache2
OCF_RESKEY_statusurl=http://127.0.0.1:18951/
OCF_RESKEY_testurl=http://127.0.0.1:18951/
OCF_RESKEY_testregex10=ok
EOF
cat >"$T/tomcat.env" <<EOF
OCF_RESOURCE_INSTANCE=hst-bench-tomcat
OCF_RESKEY_catalina_home=/usr/share/tomcat10
OCF_RESKEY_catalina_base=$T/tc
OCF_RESKEY_java_home=/usr/lib/jvm/default-java
OCF_RESKEY_statusurl=http://127.0.0.1:18952/
OCF_RESKEY_catalina_pid=$T/tc/catalina.pid
OCF_RESKEY_CRM_meta_timeout=120000
EOF

for a in nginx apache tomcat; do
  # shellcheck disable=SC2046
  env $(cat "$T/$a.env") "$T/bin/$a" start 2>/dev/null
done
# ClusterLabs tomcat knows its JVM by CATALINA_PID: give it ours.
cut -d' ' -f1 /run/hastack/tomcat-hst-bench-tomcat.id >"$T/tc/catalina.pid"

# --- measure -------------------------------------------------------------------------------
results=()
measure() { # name agent depth -- commands...
  local name=$1 agent=$2 depth=$3
  shift 3
  # Both sides must answer 0 on this service before their cost means anything.
  for cmd in "$@"; do
    # shellcheck disable=SC2046,SC2086
    env $(cat "$T/$agent.env") OCF_CHECK_LEVEL=$depth $cmd >/dev/null 2>&1 ||
      { echo "front.sh: '$cmd' (depth $depth) did not answer 0" >&2; exit 1; }
  done
  local args=()
  for cmd in "$@"; do args+=(-n "$cmd" "$cmd"); done
  # shellcheck disable=SC2046
  env $(cat "$T/$agent.env") OCF_CHECK_LEVEL="$depth" \
    hyperfine -N --style none --warmup 5 --runs "$RUNS" --export-json "$T/$name.json" "${args[@]}" >/dev/null
  results+=("$T/$name.json")
}

measure true nginx 0 /bin/true
measure nginx0 nginx 0 "$T/bin/nginx monitor" "$HB/nginx monitor"
measure nginx10 nginx 10 "$T/bin/nginx monitor" "$HB/nginx monitor"
measure apache0 apache 0 "$T/bin/apache monitor" "$HB/apache monitor"
measure apache10 apache 10 "$T/bin/apache monitor" "$HB/apache monitor"
measure tomcat0 tomcat 0 "$T/bin/tomcat monitor" "$HB/tomcat monitor"
measure tomcat10 tomcat 10 "$T/bin/tomcat monitor" "$HB/tomcat monitor"

python3 - "$T" "${results[@]}" <<'EOF'
import json, sys
tmp = sys.argv[1]
print("| monitor | depth | wall ms (mean ± sd) | CPU ms (user+sys) | CPU ratio shell/hastack |")
print("|---|---|---|---|---|")
for path in sys.argv[2:]:
    name = path.rsplit("/", 1)[1][:-5]
    depth = "10" if name.endswith("10") else "0"
    rows = json.load(open(path))["results"]
    cpu = [(r["user"] + r["system"]) * 1000 for r in rows]
    for r, c in zip(rows, cpu):
        label = r["command"].replace(tmp + "/bin/", "hastack ").replace("/usr/lib/ocf/resource.d/heartbeat/", "ClusterLabs ")
        ratio = f"{c / cpu[0]:.0f}×" if len(rows) > 1 and r is not rows[0] else ""
        print(f"| {label} | {depth} | {r['mean'] * 1000:.2f} ± {r['stddev'] * 1000:.2f} | {c:.2f} | {ratio} |")
EOF
