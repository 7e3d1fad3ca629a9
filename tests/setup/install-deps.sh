#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian 12 machine: the real software the agents manage and the
# ClusterLabs/Pacemaker tools that check them. Idempotent; fast when everything is already there.
# A policy-rc.d that exits 101 keeps package postinst scripts from starting services (nginx, apache2,
# postgresql, rabbitmq...) that would hold default ports: the tests start their own instances.
set -euo pipefail

# With arguments: install just those packages (the main job needs only pacemaker-cli-utils).
packages=(
  # conformance: ocf-tester + ra-api-1.dtd, crm_resource, pcs's OCF 1.1 RelaxNG, xmllint
  resource-agents pacemaker-cli-utils pacemaker pcs libxml2-utils
  # hastack config: apply the rendered crmsh script offline (pcs is above)
  crmsh
  # vip / filesystem: netns, loop devices, ext4/xfs
  iproute2 util-linux e2fsprogs xfsprogs kmod procps
  # fence_ups: fence-agents' metadata.rng and reference agents, cluster-glue's apcsmart plugin (simulator
  # oracle), NUT's upsd + dummy-ups (nut transport peer); pacemaker-fenced comes with pacemaker above
  fence-agents cluster-glue nut-server nut-client
  # bench/fence.sh (and bench/vip.sh): summarise hyperfine's JSON
  jq
  # vip: the monitor-forks-nothing check
  strace
  # packages: build (dpkg-deb, dpkg-shlibdeps, rpmbuild, strip), check (lintian), install test (debootstrap)
  dpkg-dev rpm binutils lintian debootstrap
  # make install: man finds the installed pages (minimal images may lack man-db), bash-completion's
  # loader finds the completion
  man-db bash-completion
  # front layer (haproxy, apache, nginx, tomcat agents)
  haproxy apache2 nginx tomcat10 default-jre-headless curl wget
  # test helpers and bench/filesystem.sh (summarises hyperfine's JSON)
  python3
  # data layer: the databases and brokers the postgresql, mariadb, activemq, rabbitmq agents manage
  postgresql mariadb-server mariadb-client activemq rabbitmq-server
  # benchmarks
  hyperfine
  # lab: the servlet application is compiled with javac (lab/app); its JDBC driver comes from Debian
  # (its JMS client jars come with activemq above)
  default-jdk-headless libpostgresql-jdbc-java
  # alert agent: validate its reports against docs/report-schema.json (Debian's validator, not
  # ours); msmtp-mta is the real sendmail the mail test delivers through to an SMTP receiver in
  # the test (a relay-only MTA configured per user: no system mail configuration is touched)
  python3-jsonschema msmtp-mta
  # drbd: two qemu TCG virtual machines booting Debian's kernel (it carries drbd.ko) from an
  # initramfs made of this machine's busybox, drbd-utils and the hastack binary; the data-layer
  # power-cut test adds this machine's PostgreSQL 15 (postgresql above) to it and commits through
  # Debian's psql (postgresql-client, pulled in by postgresql) from a network namespace
  qemu-system-x86 linux-image-amd64 busybox-static drbd-utils cpio
  # fuzz targets (make test's fuzz-smoke): libfuzzer-sys compiles libFuzzer, which is C++
  g++
  # console: the browser test drives Debian's headless Chromium through chromedriver (WebDriver)
  chromium chromium-driver
)
[ $# -gt 0 ] && packages=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi

policy=/usr/sbin/policy-rc.d
had_policy=0
[ -e "$policy" ] && had_policy=1
if [ $had_policy -eq 0 ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

export DEBIAN_FRONTEND=noninteractive
# Update the lists only when they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mtime -1 2>/dev/null | head -1)" ]; then
  apt-get update -q
fi
apt-get install -y -q --no-install-recommends "${missing[@]}"
