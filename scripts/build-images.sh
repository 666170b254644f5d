#!/usr/bin/env bash
# Builds the local images Dockyard's examples and tests use, without any registry:
#   dockyard/busybox  docker import of a busybox-static rootfs (seconds)
#   dockyard/python   docker import of a debootstrapped Debian with python3-pip (minutes, cached)
#   dockyard/mariadb  docker import of a debootstrapped Debian with mariadb-server and its
#                     client tools; its command (dockyard-mariadb) initialises a database
#                     from MARIADB_ROOT_PASSWORD / MARIADB_DATABASE, then serves on 127.0.0.1
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
  local tarball
  tarball=$(debootstrap_tar python python3,python3-pip,python3-setuptools,python3-wheel,python3-venv)
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/sh"]' "$tarball" dockyard/python:latest >/dev/null
  echo "dockyard/python: built"
}

# A root file system of Debian `suite` with `packages`, cached as a tar in $cache_dir.
debootstrap_tar() {
  local name=$1 packages=$2 tarball="$cache_dir/$1-$suite.tar"
  if [ ! -s "$tarball" ] || [ "${FORCE:-0}" = 1 ]; then
    local root
    root=$(mktemp -d)
    echo "dockyard/$name: debootstrap $suite (a few minutes, cached in $tarball)" >&2
    debootstrap --variant=minbase --include="$packages" "$suite" "$root" $(apt_mirror) \
      >"$cache_dir/debootstrap-$name.log" 2>&1 ||
      { tail -n 30 "$cache_dir/debootstrap-$name.log" >&2; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    "customise_$name" "$root"
    tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  echo "$tarball"
}

customise_mariadb() {
  local root=$1
  # The package's post-install made a data directory; each service starts from none,
  # so the command below creates it with the service's own password and database.
  rm -rf "$root"/var/lib/mysql/*
  install -m 0755 /dev/stdin "$root/usr/local/bin/dockyard-mariadb" <<'SCRIPT'
#!/bin/sh
# Starts MariaDB for a CI service: a fresh data directory initialised from
# MARIADB_ROOT_PASSWORD (root from anywhere) and MARIADB_DATABASE, then the server on
# 127.0.0.1:3306 in the foreground (its log goes to stderr).
set -eu
datadir=/var/lib/mysql
mkdir -p /run/mysqld "$datadir"
chown mysql:mysql /run/mysqld "$datadir"
if [ ! -d "$datadir/mysql" ]; then
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
    --auth-root-authentication-method=normal >/dev/null
  password=$(printf '%s' "${MARIADB_ROOT_PASSWORD:-}" | sed "s/'/''/g")
  {
    # Root only as root@localhost (the socket) and root@% with the password: the
    # install's password-less root@127.0.0.1 and friends would shadow the latter.
    echo "DELETE FROM mysql.global_priv WHERE User='root' AND Host NOT IN ('localhost', '%');"
    echo "FLUSH PRIVILEGES;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$password';"
    echo "CREATE USER 'root'@'%' IDENTIFIED BY '$password';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [ -n "${MARIADB_DATABASE:-}" ]; then echo "CREATE DATABASE \`$MARIADB_DATABASE\`;"; fi
  } | mariadbd --user=mysql --datadir="$datadir" --bootstrap >/dev/null 2>&1
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=127.0.0.1 --port=3306 \
  --skip-name-resolve --log-error=/dev/stderr
SCRIPT
}

customise_python() {
  # Debian marks its Python "externally managed"; inside a throwaway CI container pip
  # installs are the point, so the image lifts that guard.
  rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED
}

build_mariadb() {
  have_image dockyard/mariadb && { echo "dockyard/mariadb: present"; return; }
  local tarball
  tarball=$(debootstrap_tar mariadb mariadb-server,mariadb-client)
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["/usr/local/bin/dockyard-mariadb"]' "$tarball" dockyard/mariadb:latest >/dev/null
  echo "dockyard/mariadb: built"
}

case "${1:-all}" in
  busybox) build_busybox ;;
  python) build_python ;;
  mariadb) build_mariadb ;;
  all) build_busybox; build_python; build_mariadb ;;
  *) echo "usage: $0 [busybox|python|mariadb|all]" >&2; exit 2 ;;
esac
