#!/usr/bin/env bash
# Builds the initramfs the DRBD test VMs boot (tests/drbd.rs): this machine's busybox-static,
# drbd-utils, mke2fs and the hastack binary with their shared libraries, Debian's kernel modules
# for virtio, DRBD and ext4, a DRBD configuration for two nodes (vma, vmb) and an init script
# that serves a command channel on the second serial port (/dev/ttyS1).
#
# usage: build-initramfs.sh OUT.cpio.gz KERNEL_VERSION HASTACK_BINARY
#
# The command protocol (one command at a time): the host writes "ID COMMAND...\n"; the VM
# answers "@@OUT ID\n<stdout>\n@@ERR ID\n<stderr>\n@@END ID RC\n". On boot it writes
# "@@READY NODE\n". COMMAND runs under busybox sh; the test composes it from fixed strings.
set -euo pipefail

out=$1 kver=$2 hastack=$3
modules=/lib/modules/$kver
[ -d "$modules" ] || { echo "build-initramfs: no modules for kernel $kver in $modules" >&2; exit 1; }

root=$(mktemp -d /tmp/hst-initramfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib/drbd,lib64,etc,proc,sys,dev,run,tmp,mnt,modules,var/lib/drbd,var/lock,var/run}

# A binary with the shared libraries ldd finds for it, at the same paths.
copy_with_libs() {
  local src=$1 dst=${2:-$1}
  install -D -m 0755 "$src" "$root$dst"
  ldd "$src" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$root$lib" ] || install -D -m 0755 "$lib" "$root$lib"
  done
}

install -m 0755 /bin/busybox "$root/bin/busybox"
for tool in /sbin/drbdadm /sbin/drbdsetup /sbin/drbdmeta /lib/drbd/drbdadm-84 /lib/drbd/drbdsetup-84 /usr/sbin/mke2fs; do
  copy_with_libs "$tool"
done
ln -s mke2fs "$root/usr/sbin/mkfs.ext4"
[ -e /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"

# hastack, stripped (a debug build is tens of MiB), with its agent links.
copy_with_libs "$hastack" /usr/sbin/hastack
strip "$root/usr/sbin/hastack"
"$hastack" install --root "$root" --binary /usr/sbin/hastack >/dev/null

# LINBIT's shell agent, for the monitor-cost comparison (BENCHMARKS.md): bash, the OCF shell
# library and the agent from drbd-utils.
copy_with_libs /bin/bash
mkdir -p "$root/usr/lib/ocf/lib/heartbeat" "$root/usr/lib/ocf/resource.d/linbit"
cp /usr/lib/ocf/lib/heartbeat/ocf-* "$root/usr/lib/ocf/lib/heartbeat/"
cp /usr/lib/ocf/resource.d/linbit/drbd /usr/lib/ocf/resource.d/linbit/drbd.shellfuncs.sh "$root/usr/lib/ocf/resource.d/linbit/"

# The agents set promotion scores with crm_attribute; there is no cluster in the VM, so a stub
# records each call (its argv, one line) for the test to assert.
cat >"$root/usr/sbin/crm_attribute" <<'EOF'
#!/bin/sh
echo "$*" >>/run/crm_attribute.log
EOF
chmod 755 "$root/usr/sbin/crm_attribute"
# LINBIT's agent uses the older crm_master (and reads the score first: no output = no score).
cp "$root/usr/sbin/crm_attribute" "$root/usr/sbin/crm_master"

# Kernel modules in dependency order (modprobe resolves it for the VM's kernel, not the host's).
: >"$root/modules/order"
for m in virtio_pci virtio_blk virtio_net drbd ext4; do
  modprobe -S "$kver" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$root/modules/"
  basename "$ko" >>"$root/modules/order"
done

cat >"$root/etc/drbd.conf" <<'EOF'
global { usage-count no; }
resource r0 {
  device /dev/drbd0;
  disk /dev/vda;
  meta-disk internal;
  net {
    protocol C;
    # Notice a power-cut peer in about two seconds, not the default ten.
    ping-int 1;
    ping-timeout 10;
    connect-int 2;
    timeout 9;
  }
  on vma { address 10.99.0.1:7789; }
  on vmb { address 10.99.0.2:7789; }
}
EOF

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for ko in $(cat /modules/order); do insmod "/modules/$ko" 2>/dev/null; done
node=vm; ip=
for arg in $(cat /proc/cmdline); do
  case $arg in
    hst.node=*) node=${arg#hst.node=} ;;
    hst.ip=*) ip=${arg#hst.ip=} ;;
  esac
done
hostname "$node"
ip link set lo up
ip link set eth0 up
[ -n "$ip" ] && ip addr add "$ip/24" dev eth0
stty -F /dev/ttyS1 raw -echo
exec 3<>/dev/ttyS1
echo "@@READY $node" >&3
while true; do
  read -r id cmd <&3 || continue
  sh -c "$cmd" </dev/null >/tmp/out 2>/tmp/err
  rc=$?
  { echo "@@OUT $id"; cat /tmp/out; echo; echo "@@ERR $id"; cat /tmp/err; echo; echo "@@END $id $rc"; } >&3
done
EOF
chmod 755 "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
