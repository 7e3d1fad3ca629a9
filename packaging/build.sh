#!/usr/bin/env bash
# Builds the .deb and the .rpm from one staging tree, so both carry the same files:
#   packaging/build.sh [BINARY [OUTDIR]]   (defaults: target/release/hastack, target/packages)
# (hastack-console is taken from beside BINARY: packaging/install.sh.)
# Output: OUTDIR/hastack_<version>_<arch>.deb and hastack-<version>-1.<arch>.rpm.
# What goes where is packaging/install.sh's list, shared with `make install`. The agent links are
# real symlinks in the package payload, not created by a maintainer script that could fail silently.
set -euo pipefail
# Both paths as the caller meant them (relative to the working directory), then the source tree.
here=$(cd "$(dirname "$0")/.." && pwd)
binary=$(realpath -e "${1:-$here/target/release/hastack}")
mkdir -p "${2:-$here/target/packages}"
out=$(realpath -e "${2:-$here/target/packages}")
cd "$here"
# Absolute: rpmbuild's %install copies it from rpmbuild's own working directory.
stage=$out/stage
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
deb_arch=$(dpkg --print-architecture)
rpm_arch=$(uname -m)

rm -rf "$stage" "$out"/*.deb "$out"/*.rpm "$out/rpmbuild"
mkdir -p "$stage"

# The payload: the same list `make install` uses.
packaging/install.sh "$binary" "$stage"
find "$stage" -type d -exec chmod 0755 {} +

# --- .deb ---
mkdir -p "$stage/DEBIAN"
shlibs=$(
  tmp=$(mktemp -d)
  mkdir -p "$tmp/debian"
  printf 'Source: hastack\n\nPackage: hastack\nArchitecture: any\n' >"$tmp/debian/control"
  (cd "$tmp" && dpkg-shlibdeps -O "$stage/usr/sbin/hastack" "$stage/usr/sbin/hastack-console" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
  rm -rf "$tmp"
)
installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$deb_arch/" -e "s/@DEPENDS@/$shlibs/" \
    -e "s/@SIZE@/$installed_size/" packaging/deb/control >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
deb=$out/hastack_${version}_${deb_arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
rm -rf "$stage/DEBIAN"

# --- .rpm --- (same staging tree; the file list is generated from it)
top=$out/rpmbuild
mkdir -p "$top"/{BUILD,RPMS,SPECS,SRPMS,SOURCES}
(cd "$stage" && find . \( -type f -o -type l \) -printf '/%P\n' | sort) >"$top/files.list"
rpmbuild -bb --quiet --nodeps \
  --define "_topdir $top" --define "stage $stage" --define "filelist $top/files.list" \
  --define "version $version" --target "$rpm_arch" packaging/rpm/hastack.spec >/dev/null
cp "$top"/RPMS/*/*.rpm "$out/"

ls -1 "$out"/*.deb "$out"/*.rpm
