#!/usr/bin/env bash
# Installs hastack's files under ROOT: the one list of what goes where, used by `make install`
# (ROOT is DESTDIR, or /) and by packaging/build.sh (ROOT is the packages' staging tree), so the
# .deb, the .rpm and `make install` put the same files in the same places.
#   packaging/install.sh BINARY ROOT
# BINARY is the built `hastack`; the console's binary, `hastack-console`, is taken from beside it.
# The layout is fixed, not under a PREFIX: Pacemaker, the fencer, man, the shells' completion
# loaders and the stacks' [alert] path look in these places and nowhere else.
# Every file and link is written beside its final name and renamed over it, so a program using an
# installed file (Pacemaker running an agent, a test running the binary) never sees it missing or
# half-written, and installing over a running binary works.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 BINARY ROOT" >&2
  exit 2
fi
# Both paths as the caller meant them, before moving to the source tree.
binary=$(realpath -e "$1")
console=$(realpath -e "$(dirname "$binary")/hastack-console")
root=$(realpath -m "$2")
root=${root%/}
cd "$(dirname "$0")/.."
umask 022

# The temporary name beside DEST: hidden (Pacemaker lists no dot-files as agents) and per process.
tmp_for() { echo "$(dirname "$1")/.$(basename "$1").hastack-new.$$"; }

# put MODE SOURCE DEST [gzip]: SOURCE becomes ROOT/DEST (gzip: compressed, DEST ends in .gz).
put() {
  local dest=$root$3 tmp
  tmp=$(tmp_for "$dest")
  mkdir -p "$(dirname "$dest")"
  if [ "${4:-}" = gzip ]; then
    gzip -9n -c "$2" >"$tmp"
  else
    cp "$2" "$tmp"
  fi
  chmod "$1" "$tmp"
  mv -fT "$tmp" "$dest"
}

# link DEST TARGET: ROOT/DEST becomes a symlink to TARGET, relative as Debian policy asks inside
# /usr (lintian symlink-should-be-relative), so it holds under any ROOT.
link() {
  local dest=$root$1 tmp
  tmp=$(tmp_for "$dest")
  mkdir -p "$(dirname "$dest")"
  rm -f "$tmp"
  ln -s "$(realpath -ms --relative-to="$(dirname "$1")" "$2")" "$tmp"
  mv -fT "$tmp" "$dest"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The binary (stripped), and every applet as a link to it where Pacemaker and the fencer look
# (/usr/lib/ocf/resource.d/hastack/<type>, /usr/sbin/fence_ups): the binary's own table says where.
cp "$binary" "$work/hastack"
strip --strip-unneeded "$work/hastack"
put 0755 "$work/hastack" /usr/sbin/hastack
"$binary" list | while read -r _name _kind path; do
  link "$path" /usr/sbin/hastack
done
# The console's own binary (stripped), beside hastack, where `hastack console ...` runs it: the
# agents' binary links none of the console.
cp "$console" "$work/hastack-console"
strip --strip-unneeded "$work/hastack-console"
put 0755 "$work/hastack-console" /usr/sbin/hastack-console

# Man pages (ocf_hastack_<type>(7), fence_ups(8), hastack(8), hastack-console(8)) and completions, generated from the
# same tables as the meta-data and the command line.
"$binary" doc --out "$work/doc" >/dev/null
for page in "$work"/doc/man/man*/*; do
  put 0644 "$page" "/usr/share/man/$(basename "$(dirname "$page")")/$(basename "$page").gz" gzip
done
put 0644 "$work/doc/completions/hastack.bash" /usr/share/bash-completion/completions/hastack
put 0644 "$work/doc/completions/_hastack" /usr/share/zsh/vendor-completions/_hastack
put 0644 "$work/doc/completions/hastack.fish" /usr/share/fish/vendor_completions.d/hastack.fish

# The alert agent (/usr/lib/hastack/alert, an applet link above): its spool directory, owned by
# the user Pacemaker runs alert agents as (created by systemd-tmpfiles: at boot, or at once with
# `systemd-tmpfiles --create hastack.conf`; no maintainer script), and the timer that flushes it
# (not enabled here).
put 0644 packaging/tmpfiles/hastack.conf /usr/lib/tmpfiles.d/hastack.conf
put 0644 packaging/systemd/hastack-alert-flush.service /usr/lib/systemd/system/hastack-alert-flush.service
put 0644 packaging/systemd/hastack-alert-flush.timer /usr/lib/systemd/system/hastack-alert-flush.timer

# Documentation: copyright, changelog, README, the cluster-configuration examples (scripts in
# them stay executable).
docdir=/usr/share/doc/hastack
put 0644 packaging/copyright $docdir/copyright
put 0644 packaging/changelog $docdir/changelog.gz gzip
put 0644 README.md $docdir/README.md
find crm-config -type f -printf '%P\n' | sort | while read -r f; do
  mode=0644
  [ -x "crm-config/$f" ] && mode=0755
  put $mode "crm-config/$f" "$docdir/examples/crm-config/$f"
done
