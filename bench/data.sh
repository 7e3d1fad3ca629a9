#!/usr/bin/env bash
# Data-layer benchmarks (DESIGN.md §7): monitor cost of hastack's postgresql, mariadb, rabbitmq
# and activemq agents against the ClusterLabs pgsql, mysql and rabbitmq-server-ha agents on the
# same running server, and how long each agent's start takes to return (start-to-ready) against
# its anchor on the same data. Needs root, hyperfine, the Debian packages of tests/setup and a
# release build (CARGO_TARGET_DIR honoured). Prints Markdown tables for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
bin=$(realpath "$target/release/hastack")
heartbeat=/usr/lib/ocf/resource.d/heartbeat
runs=${RUNS:-30}

work=$(mktemp -d /tmp/hst-bench-data.XXXXXX)
chmod 755 "$work"
"$bin" install --root "$work/root" >/dev/null
ours=$work/root/usr/lib/ocf/resource.d/hastack
export OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=bench OCF_RESKEY_CRM_meta_timeout=120000
export OCF_RESKEY_CRM_meta_interval=10000

cleanup() {
  set +e
  for a in postgresql mariadb activemq rabbitmq; do "$ours/$a" stop >/dev/null 2>&1; done
  "$heartbeat/pgsql" stop >/dev/null 2>&1
  "$heartbeat/mysql" stop >/dev/null 2>&1
  for p in $(ss -Hltnp "sport = :19872" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2); do kill "$p"; done
  rm -rf "$work"
}
trap cleanup EXIT

# hyperfine over commands (no shell); prints "| name | wall ms | CPU ms |" rows.
measure() {
  local n=$1; shift
  local json=$work/h.json
  local args=()
  for c in "$@"; do args+=("$c"); done
  hyperfine -N --warmup 2 --runs "$n" --export-json "$json" "${args[@]}" >/dev/null 2>&1 || \
    hyperfine -N -i --warmup 1 --runs "$n" --export-json "$json" "${args[@]}" >/dev/null
  python3 - "$json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    import re
    c = r["command"]
    depth = re.search(r"OCF_CHECK_LEVEL=(\d+)", c)
    words = [w for w in c.split() if "/" in w]
    name = (words[-1].split("/")[-1] if words else c) + " " + c.split()[-1]
    if "rabbitmqctl" in c:
        name = "rabbitmqctl eval which_applications (the anchor's core check)"
    cmd = name + (f" (depth {depth.group(1)})" if depth and "monitor" in c else "")
    codes = sorted(set(r.get("exit_codes", [])))
    print(f"| {cmd} | {r['mean']*1000:.1f} ± {r['stddev']*1000:.1f} | {(r['user']+r['system'])*1000:.1f} | {codes} |")
PY
}
header() { echo; echo "$1"; echo; echo "| command | wall ms | CPU ms (user+sys) | exit codes |"; echo "|---|---|---|---|"; }

echo "baseline:"; header "### /bin/true"; measure "$runs" /bin/true

# ---- PostgreSQL 15 ----------------------------------------------------------------------------
pg=$work/pg; install -d -o postgres -g postgres "$pg" "$pg/tmp"
runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -N -A peer -D "$pg/data" >/dev/null
export OCF_RESKEY_bindir=/usr/lib/postgresql/15/bin OCF_RESKEY_pgdata=$pg/data \
  OCF_RESKEY_config=$pg/data/postgresql.conf OCF_RESKEY_port=19870 OCF_RESKEY_listen_addresses=127.0.0.1 \
  OCF_RESKEY_socket_dir=$pg/sock OCF_RESKEY_logfile=$pg/pg.log
# the anchor's names for the same server
export OCF_RESKEY_pgctl=/usr/lib/postgresql/15/bin/pg_ctl OCF_RESKEY_psql=/usr/lib/postgresql/15/bin/psql \
  OCF_RESKEY_pgport=19870 OCF_RESKEY_pghost=$pg/sock OCF_RESKEY_socketdir=$pg/sock OCF_RESKEY_tmpdir=$pg/tmp \
  OCF_RESKEY_logfile=$pg/pg.log OCF_RESKEY_start_opt="-c listen_addresses=127.0.0.1 -c unix_socket_directories=$pg/sock"
"$ours/postgresql" start
header "### PostgreSQL 15: monitor of the running server"
measure "$runs" "env OCF_CHECK_LEVEL=0 $ours/postgresql monitor" "env OCF_CHECK_LEVEL=10 $ours/postgresql monitor" \
  "env OCF_CHECK_LEVEL=20 $ours/postgresql monitor" "env OCF_CHECK_LEVEL=0 $heartbeat/pgsql monitor"
header "### PostgreSQL 15: start (stopped before each run)"
measure 5 --prepare "$ours/postgresql stop" "$ours/postgresql start"
measure 5 --prepare "$ours/postgresql stop" "$heartbeat/pgsql start"
"$ours/postgresql" stop

# ---- MariaDB 10.11 ------------------------------------------------------------------------------
my=$work/my; install -d -o mysql -g mysql "$my" "$my/run"
mariadb-install-db --no-defaults --user=mysql --auth-root-authentication-method=socket --skip-test-db \
  --datadir="$my/data" --tmpdir="$my" >/dev/null
printf '[mysqld]\nskip-name-resolve\ninnodb_buffer_pool_size=32M\nperformance_schema=OFF\ntmpdir=%s\nport=19871\nbind-address=127.0.0.1\n' "$my" >"$my/my.cnf"
export OCF_RESKEY_datadir=$my/data OCF_RESKEY_socket=$my/run/mysqld.sock OCF_RESKEY_pid=$my/run/mysqld.pid \
  OCF_RESKEY_log=$my/error.log OCF_RESKEY_port=19871 OCF_RESKEY_bind_address=127.0.0.1
export OCF_RESKEY_binary=/usr/sbin/mariadbd OCF_RESKEY_config=$my/my.cnf
# the anchor: its own defaults (mysqld_safe) for start; the same files
mysql_anchor() { env OCF_RESKEY_binary=/usr/bin/mysqld_safe OCF_RESKEY_user=mysql OCF_RESKEY_group=mysql \
  OCF_RESKEY_test_user=root OCF_RESKEY_test_table=mysql.user "$@"; }
"$ours/mariadb" start
header "### MariaDB 10.11: monitor of the running server"
measure "$runs" "env OCF_CHECK_LEVEL=0 $ours/mariadb monitor" "env OCF_CHECK_LEVEL=10 $ours/mariadb monitor" \
  "env OCF_CHECK_LEVEL=20 $ours/mariadb monitor" \
  "env OCF_CHECK_LEVEL=0 OCF_RESKEY_binary=/usr/bin/mysqld_safe OCF_RESKEY_user=mysql OCF_RESKEY_group=mysql OCF_RESKEY_test_user=root $heartbeat/mysql monitor" \
  "env OCF_CHECK_LEVEL=10 OCF_RESKEY_binary=/usr/bin/mysqld_safe OCF_RESKEY_user=mysql OCF_RESKEY_group=mysql OCF_RESKEY_test_user=root $heartbeat/mysql monitor"
header "### MariaDB 10.11: start (stopped before each run)"
measure 5 --prepare "$ours/mariadb stop" "$ours/mariadb start"
measure 5 --prepare "$ours/mariadb stop" \
  "env OCF_RESKEY_binary=/usr/bin/mysqld_safe OCF_RESKEY_user=mysql OCF_RESKEY_group=mysql OCF_RESKEY_test_user=root $heartbeat/mysql start"
mysql_anchor "$heartbeat/mysql" stop >/dev/null 2>&1 || true
"$ours/mariadb" stop
unset OCF_RESKEY_binary OCF_RESKEY_config OCF_RESKEY_log OCF_RESKEY_port

# ---- RabbitMQ 3.10 ------------------------------------------------------------------------------
rq=$work/rq; install -d -o rabbitmq -g rabbitmq "$rq" "$rq/data"
echo '[].' >"$rq/enabled_plugins"; echo 'log.console = true' >"$rq/rabbitmq.conf"
export OCF_RESKEY_data_dir=$rq/data OCF_RESKEY_port=19873 OCF_RESKEY_listen_address=127.0.0.1 \
  OCF_RESKEY_dist_port=19874 OCF_RESKEY_epmd_port=19872 OCF_RESKEY_config=$rq/rabbitmq.conf \
  OCF_RESKEY_enabled_plugins=$rq/enabled_plugins OCF_RESKEY_log=$rq/node.log
"$ours/rabbitmq" start
header "### RabbitMQ 3.10: monitor of the running node"
measure "$runs" "env OCF_CHECK_LEVEL=0 $ours/rabbitmq monitor" "env OCF_CHECK_LEVEL=10 $ours/rabbitmq monitor" \
  "env OCF_CHECK_LEVEL=20 $ours/rabbitmq monitor"
# The anchor asks the same node through rabbitmqctl (an Erlang VM per call).
measure 5 "env OCF_CHECK_LEVEL=0 ERL_EPMD_PORT=19872 RABBITMQ_NODENAME=rabbit@localhost OCF_RESKEY_node_port=19873 OCF_RESKEY_erlang_cookie=false $heartbeat/rabbitmq-server-ha monitor"
measure 5 "env ERL_EPMD_PORT=19872 /usr/sbin/rabbitmqctl -n rabbit@localhost eval rabbit_misc:which_applications()."
header "### RabbitMQ 3.10: start (stopped before each run)"
measure 3 --prepare "$ours/rabbitmq stop" "$ours/rabbitmq start"
"$ours/rabbitmq" stop

# ---- ActiveMQ 5.17 (no ClusterLabs anchor) ------------------------------------------------------
aq=$work/aq; install -d -o activemq -g activemq "$aq" "$aq/data"
cat >"$aq/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="bench" dataDirectory="\${activemq.data}">
    <persistenceAdapter><kahaDB directory="\${activemq.data}/kahadb"/></persistenceAdapter>
    <transportConnectors><transportConnector name="stomp" uri="stomp://127.0.0.1:19875"/></transportConnectors>
  </broker>
</beans>
XML
export OCF_RESKEY_config=$aq/activemq.xml OCF_RESKEY_data_dir=$aq/data OCF_RESKEY_stomp_port=19875 \
  OCF_RESKEY_log=$aq/broker.log OCF_RESKEY_java_opts="-Xms64m -Xmx256m"
"$ours/activemq" start
header "### ActiveMQ 5.17: monitor of the running broker"
measure "$runs" "env OCF_CHECK_LEVEL=0 $ours/activemq monitor" "env OCF_CHECK_LEVEL=10 $ours/activemq monitor" \
  "env OCF_CHECK_LEVEL=20 $ours/activemq monitor"
header "### ActiveMQ 5.17: start (stopped before each run)"
measure 3 --prepare "$ours/activemq stop" "$ours/activemq start"
"$ours/activemq" stop
