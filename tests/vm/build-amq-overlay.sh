#!/usr/bin/env bash
# Builds what the DRBD VMs need to run Debian's ActiveMQ 5.17 (tests/drbd/power_cut_broker.rs,
# bench/vm-activemq-start.sh):
#
# - OUT.img: a read-only ext4 disk (the VMs' second virtio disk, /dev/vdb, mounted on /sw)
#   with this machine's Java 17 runtime (/sw/jvm, the JDK-only parts left out) and ActiveMQ's
#   home (/sw/activemq, Debian's jar symlinks resolved). 150 MiB does not fit the initramfs of a
#   768 MiB VM that also runs the JVM, and on a disk the guest pages in only what it reads.
# - OUT.cpio.gz: an initramfs overlay (concatenated after the base archive, like
#   build-pg-overlay.sh) with the shared libraries the JVM links (at their paths, as the agent
#   clears the environment: no LD_LIBRARY_PATH), an activemq account with this machine's
#   uid/gid, and /etc/hosts naming the VMs (the broker resolves its own host name).
#
# usage: build-amq-overlay.sh OUT   (writes OUT.img and OUT.cpio.gz)
set -euo pipefail

out=$1
jvm=$(readlink -f /usr/lib/jvm/default-java)
[ -x "$jvm/bin/java" ] || { echo "build-amq-overlay: no Java runtime (package default-jre-headless)" >&2; exit 1; }
[ -e /usr/share/activemq/bin/activemq.jar ] || { echo "build-amq-overlay: no /usr/share/activemq (package activemq)" >&2; exit 1; }

work=$(mktemp -d /tmp/hst-amq-overlay.XXXXXX)
trap 'rm -rf "$work"' EXIT
sw=$work/sw root=$work/root
mkdir -p "$sw/jvm" "$sw/activemq" "$root/etc"

# The runtime: bin, conf, lib (its symlinks into /etc/java-17-openjdk resolved), no jmods,
# headers, ct.sym or src.zip.
tar -C "$jvm" --dereference --exclude=lib/ct.sym --exclude=lib/src.zip -cf - bin conf lib release | tar -C "$sw/jvm" -xf -
# Debian's jar links resolved; links to packages not installed (optional extras) left out.
(cd /usr/share/activemq && find . -type d) | while read -r d; do mkdir -p "$sw/activemq/$d"; done
(cd /usr/share/activemq && find . ! -type d) | while read -r f; do
  if [ -e "/usr/share/activemq/$f" ]; then cp -L "/usr/share/activemq/$f" "$sw/activemq/$f"; fi
done

# The libraries java, libjvm.so and the runtime's own libraries link (the graphical ones, which
# a broker never loads, left out), at their paths; the runtime's own ($ORIGIN) are on the disk.
find "$sw/jvm/bin" "$sw/jvm/lib" -type f \( -perm -u+x -o -name '*.so' \) |
  grep -vE 'awt|fontmanager|jsound|splashscreen|lcms|javajpeg|mlib_image|atk-wrapper' |
  while read -r f; do ldd "$f" 2>/dev/null | grep -o '=> /[^ ]*' | cut -c4- || true; done |
  grep -v "^$work/" | sort -u | while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
uid=$(id -u activemq) gid=$(id -g activemq)
printf 'root:x:0:0:root:/root:/bin/sh\nactivemq:x:%s:%s:ActiveMQ:/var/lib/activemq:/bin/sh\n' "$uid" "$gid" >"$root/etc/passwd"
printf 'root:x:0:\nactivemq:x:%s:\n' "$gid" >"$root/etc/group"
printf '127.0.0.1 localhost\n10.99.0.1 vma\n10.99.0.2 vmb\n' >"$root/etc/hosts"

# The broker's configurations: KahaDB under ${activemq.data}, STOMP on every address (the agent
# probes 127.0.0.1, clients come through the data-layer VIP), no JMX, no OpenWire. "durable" is
# KahaDB's default (the journal synced before a persistent send is acknowledged); "nosync"
# (journalDiskSyncStrategy="never") is the negative control's: acknowledged from the page cache.
for flavour in durable nosync; do
  sync=
  [ "$flavour" = nosync ] && sync=' journalDiskSyncStrategy="never"'
  mkdir -p "$root/etc/hst-amq/$flavour"
  cat >"$root/etc/hst-amq/$flavour/activemq.xml" <<XML
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" advisorySupport="false" brokerName="hst" dataDirectory="\${activemq.data}">
    <persistenceAdapter><kahaDB directory="\${activemq.data}/kahadb"$sync/></persistenceAdapter>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://0.0.0.0:61613"/>
    </transportConnectors>
  </broker>
</beans>
XML
  cat >"$root/etc/hst-amq/$flavour/log4j.properties" <<'LOG4J'
log4j.rootLogger=INFO, stdout
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%d | %-5p | %m%n
LOG4J
done

size_mib=$(( $(du -sm "$sw" | cut -f1) + 32 ))
mke2fs -q -t ext4 -d "$sw" -L hst-sw "$out.img.tmp" "${size_mib}M"
mv "$out.img.tmp" "$out.img"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.cpio.gz.tmp"
mv "$out.cpio.gz.tmp" "$out.cpio.gz"
