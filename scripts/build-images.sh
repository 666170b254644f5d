#!/usr/bin/env bash
# Builds the local images Dockyard's examples and tests use, without any registry:
#   dockyard/busybox  docker import of a busybox-static rootfs (seconds)
#   dockyard/python   docker import of a debootstrapped Debian with python3-pip (minutes, cached)
# Each image is rebuilt only when it is missing, or when FORCE=1.
set -euo pipefail

suite=${DOCKYARD_DEBIAN_SUITE:-bookworm}
cache_dir=${DOCKYARD_IMAGE_CACHE:-/var/cache/dockyard/images}
mkdir -p "$cache_dir"

have_image() { [ "${FORCE:-0}" != 1 ] && docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror this machine's apt already uses, so the script names no host of its own.
apt_mirror() {
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -v security | sed -E 's/^URIs: *//; s/^deb +(\[[^]]*\] +)?//' | awk '{print $1}' | head -n1)
  echo "${uri}"
}

build_busybox() {
  have_image dockyard/busybox && { echo "dockyard/busybox: present"; return; }
  local root
  root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - dockyard/busybox:latest >/dev/null
  rm -rf "$root"
  echo "dockyard/busybox: built"
}

build_python() {
  have_image dockyard/python && { echo "dockyard/python: present"; return; }
  local tarball="$cache_dir/python-$suite.tar"
  if [ ! -s "$tarball" ] || [ "${FORCE:-0}" = 1 ]; then
    local root
    root=$(mktemp -d)
    echo "dockyard/python: debootstrap $suite (a few minutes, cached in $tarball)"
    debootstrap --variant=minbase \
      --include=python3,python3-pip,python3-setuptools,python3-wheel,python3-venv \
      "$suite" "$root" $(apt_mirror) >"$cache_dir/debootstrap.log" 2>&1 ||
      { tail -n 30 "$cache_dir/debootstrap.log" >&2; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    # Debian marks its Python "externally managed"; inside a throwaway CI container pip
    # installs are the point, so the image lifts that guard.
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/sh"]' "$tarball" dockyard/python:latest >/dev/null
  echo "dockyard/python: built"
}

case "${1:-all}" in
  busybox) build_busybox ;;
  python) build_python ;;
  all) build_busybox; build_python ;;
  *) echo "usage: $0 [busybox|python|all]" >&2; exit 2 ;;
esac
