#!/usr/bin/env bash
# Prints the path of a cached minimal Debian 12 root for package tests, making it first if needed:
# debootstrap minbase + pacemaker-cli-utils (crm_resource, stonith_admin) + man-db. Kept between
# runs (/var/cache/hastack-tests), so only the first run pays for it; the tests never change it
# (they install into an overlay on top of it).
set -euo pipefail
cache=${HASTACK_TEST_CACHE:-/var/cache/hastack-tests}
root=$cache/bookworm-root
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -f "$root/.hastack-ready" ]; then
  command -v debootstrap >/dev/null || "$(dirname "$0")/install-deps.sh" debootstrap >&2
  rm -rf "$root"
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >&2
  mount -t proc proc "$root/proc"
  trap 'umount "$root/proc" 2>/dev/null || true' EXIT
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    pacemaker-cli-utils pacemaker man-db >&2
  chroot "$root" apt-get clean
  umount "$root/proc"
  trap - EXIT
  touch "$root/.hastack-ready"
fi
echo "$root"
