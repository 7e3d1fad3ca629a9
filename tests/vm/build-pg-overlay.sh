#!/usr/bin/env bash
# Builds a second initramfs archive with PostgreSQL 15 for the data-layer power-cut test
# (tests/drbd.rs). The test concatenates it after the base archive (build-initramfs.sh): the
# kernel unpacks both into one root, so the DRBD test that needs no PostgreSQL boots no bigger.
#
# It carries this machine's postgres server binary with its shared libraries (no JIT: llvmjit.so
# is left out, so the server runs without JIT), the share directory, the UTC zone, a postgres
# account with this machine's uid/gid (initdb refuses root; the seed cluster's files keep their
# owner), and a seed cluster made here by initdb: the VM copies it onto the DRBD filesystem, as
# an administrator puts the data directory on the replicated partition once. The seed keeps
# initdb's postgresql.conf, so fsync and synchronous_commit are PostgreSQL's defaults (on);
# pg_hba.conf adds trust for the test's client network (10.98.0.0/24, a namespace of the test).
#
# usage: build-pg-overlay.sh OUT.cpio.gz
set -euo pipefail

out=$1
bindir=/usr/lib/postgresql/15/bin
[ -x "$bindir/postgres" ] || { echo "build-pg-overlay: no $bindir/postgres (package postgresql-15)" >&2; exit 1; }

root=$(mktemp -d /tmp/hst-pg-overlay.XXXXXX)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root" # initdb runs as postgres below
mkdir -p "$root/etc" "$root/usr/share/zoneinfo/Etc" "$root/usr/lib/postgresql/15/lib" "$root/usr/share/postgresql"

copy_with_libs() {
  local src=$1
  install -D -m 0755 "$src" "$root$src"
  ldd "$src" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
    [ -e "$root$lib" ] || install -D -m 0755 "$lib" "$root$lib"
  done
}
copy_with_libs "$bindir/postgres"
copy_with_libs /usr/lib/postgresql/15/lib/plpgsql.so
cp -a /usr/share/postgresql/15 "$root/usr/share/postgresql/"
cp /usr/share/zoneinfo/Etc/UTC "$root/usr/share/zoneinfo/Etc/UTC"
ln -s Etc/UTC "$root/usr/share/zoneinfo/UTC"

uid=$(id -u postgres) gid=$(id -g postgres)
printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:%s:%s:PostgreSQL:/var/lib/postgresql:/bin/sh\n' "$uid" "$gid" >"$root/etc/passwd"
printf 'root:x:0:\npostgres:x:%s:\n' "$gid" >"$root/etc/group"

install -d -o postgres -g postgres -m 700 "$root/pgseed"
TZ=UTC runuser -u postgres -- "$bindir/initdb" -N -A trust --locale=C -E UTF8 -D "$root/pgseed" >/dev/null
echo "host all all 10.98.0.0/24 trust" >>"$root/pgseed/pg_hba.conf"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
