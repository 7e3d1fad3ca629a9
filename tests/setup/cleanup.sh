#!/usr/bin/env bash
# Removes what an interrupted test run may have left: namespaces, mounts and loop devices whose
# names carry the tests' `hst` prefix. Tests clean up after themselves through drop guards; this
# is for runs killed from outside (a timeout, ^C), and runs before every test run.
set -u
# Lab tests (tests/lab.rs) run labs named hst<digits>: first their UPS power processes (they would
# boot a node again), then the namespace sweep below kills the nodes; their loop devices and files last.
pgrep -f 'hastack lab --name hst[0-9]+ power ' 2>/dev/null | xargs -r kill -KILL 2>/dev/null
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^hst'); do
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  ip netns delete "$ns" 2>/dev/null
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^hst'); do
  ip link delete "$link" 2>/dev/null
done
losetup -a 2>/dev/null | grep 'hst-loop' | cut -d: -f1 | while read -r dev; do
  awk -v d="$dev" '$1 == d {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  losetup -d "$dev" 2>/dev/null
done
# fence tests: NUT daemons configured from a hst-nut temp dir, and UPS simulators linked under /tmp/hst-ups*.
for pid in $(pgrep -f '^/lib/nut/' 2>/dev/null); do
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -q '^NUT_CONFPATH=/tmp/hst-nut' && kill -KILL "$pid" 2>/dev/null
done
pgrep -f 'ups-sim --link /tmp/hst-ups' 2>/dev/null | xargs -r kill -KILL 2>/dev/null

# DRBD VM tests: their qemu processes die with the test (PDEATHSIG); their disk files stay.
rm -rf /tmp/hst-drbd* /tmp/hst-initramfs.* 2>/dev/null

# Data-layer servers of killed test runs: their data lives under /tmp/hst-data* (cwd, arguments or
# environment say so), and each test's own epmd runs on a port in the tests' 19000-19999 range.
for pid in $(ls /proc | grep -E '^[0-9]+$'); do
  if readlink "/proc/$pid/cwd" 2>/dev/null | grep -q '^/tmp/hst-data' ||
     tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '/tmp/hst-data' ||
     tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qE '^(RABBITMQ_MNESIA_BASE=/tmp/hst-data|ERL_EPMD_PORT=19[0-9]{3}$)'; then
    kill -KILL "$pid" 2>/dev/null
  fi
done 2>/dev/null
losetup -a 2>/dev/null | grep '/var/lib/hastack-lab/hst' | cut -d: -f1 | while read -r dev; do
  losetup -d "$dev" 2>/dev/null
done
rm -rf /var/lib/hastack-lab/hst* /run/hastack-lab/hst* 2>/dev/null
exit 0
