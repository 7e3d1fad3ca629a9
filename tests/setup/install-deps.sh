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
  # vip / filesystem: netns, loop devices, ext4/xfs
  iproute2 util-linux e2fsprogs xfsprogs kmod procps
  # data layer: the databases and brokers the postgresql, mariadb, activemq, rabbitmq agents manage
  postgresql mariadb-server mariadb-client activemq rabbitmq-server
  # benchmarks
  hyperfine
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
