#!/usr/bin/env bash
# Builds the .deb and the .rpm from one staging tree, so both carry the same files:
#   packaging/build.sh [BINARY [OUTDIR]]   (defaults: target/release/hastack, target/packages)
# Output: OUTDIR/hastack_<version>_<arch>.deb and hastack-<version>-1.<arch>.rpm.
# The agent links are real symlinks in the package payload (made by `hastack install --root`),
# not created by a maintainer script that could fail silently; the man pages and completions come
# from the same tables as the meta-data (`hastack doc`).
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

# The binary and its links.
install -D -m 0755 "$binary" "$stage/usr/sbin/hastack"
strip --strip-unneeded "$stage/usr/sbin/hastack"
"$stage/usr/sbin/hastack" install --root "$stage" --binary /usr/sbin/hastack >/dev/null
# Relative links are what Debian policy asks for inside /usr (lintian symlink-should-be-relative).
for link in $(find "$stage" -type l); do
  dir=$(dirname "${link#"$stage"}")
  ln -sfn "$(realpath -m --relative-to="$dir" /usr/sbin/hastack)" "$link"
done

# Man pages and completions.
doc=$(mktemp -d)
trap 'rm -rf "$doc"' EXIT
"$stage/usr/sbin/hastack" doc --out "$doc" >/dev/null
for page in "$doc"/man/man*/*; do
  section=$(basename "$(dirname "$page")")
  install -D -m 0644 "$page" "$stage/usr/share/man/$section/$(basename "$page")"
  gzip -9n "$stage/usr/share/man/$section/$(basename "$page")"
done
install -D -m 0644 "$doc/completions/hastack.bash" "$stage/usr/share/bash-completion/completions/hastack"
install -D -m 0644 "$doc/completions/_hastack" "$stage/usr/share/zsh/vendor-completions/_hastack"
install -D -m 0644 "$doc/completions/hastack.fish" "$stage/usr/share/fish/vendor_completions.d/hastack.fish"

# Documentation: copyright, changelog, README, the shipped cluster-configuration examples.
docdir=$stage/usr/share/doc/hastack
install -D -m 0644 packaging/copyright "$docdir/copyright"
install -D -m 0644 packaging/changelog "$docdir/changelog"
gzip -9n "$docdir/changelog"
install -m 0644 README.md "$docdir/README.md"
if [ -d crm-config ] && [ -n "$(ls -A crm-config)" ]; then
  mkdir -p "$docdir/examples"
  cp -r crm-config "$docdir/examples/"
  find "$docdir/examples" -type f -exec chmod 0644 {} + -o -type d -exec chmod 0755 {} +
  # Scripts stay runnable (alert agents, helpers).
  find crm-config -type f -perm -u+x -printf '%P\n' | while read -r f; do chmod 0755 "$docdir/examples/crm-config/$f"; done
fi
find "$stage" -type d -exec chmod 0755 {} +

# --- .deb ---
mkdir -p "$stage/DEBIAN"
shlibs=$(
  tmp=$(mktemp -d)
  mkdir -p "$tmp/debian"
  printf 'Source: hastack\n\nPackage: hastack\nArchitecture: any\n' >"$tmp/debian/control"
  (cd "$tmp" && dpkg-shlibdeps -O "$stage/usr/sbin/hastack" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
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
