#!/usr/bin/env bash
# Figure 6's first baseline: examples/wheels done by hand with `docker run`, the steps a
# user scripts without Dockyard. The same images, commands, cache volume and loopback-only
# database as the pipeline; the wheels land in OUT.
#   bench/wheels/by-hand.sh cold|warm SRC OUT
# cold: the dev image and the cache volume are removed first; warm: both are kept.
set -euo pipefail
mode=$1 src=$2 out=$3
tag=bench-hand; image=$tag-dev; cache=$tag-build
work=$(mktemp -d /tmp/dy-hand-XXXXXX)
trap 'docker rm -f $tag-db >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
if [ "$mode" = cold ]; then
  docker rmi -f "$image" >/dev/null 2>&1 || true
  docker volume rm -f "$cache" >/dev/null 2>&1 || true
fi
cp -a "$src" "$work/app"  # the stage gets a copy of the source too (the egg-info lands in it)
pip_env=(-e PIP_NO_INPUT=1 -e PIP_DISABLE_PIP_VERSION_CHECK=1 -e PIP_ROOT_USER_ACTION=ignore)
database() {  # PASSWORD: a MariaDB on its own loopback, ready
  docker run -d --name $tag-db --network none -e MARIADB_ROOT_PASSWORD="$1" -e MARIADB_DATABASE=todo \
    dockyard/mariadb >/dev/null
  until docker exec $tag-db mysqladmin ping -h 127.0.0.1 --silent >/dev/null 2>&1; do sleep 0.2; done
}

docker build -q -t "$image" "$src/docker/dev" >/dev/null
docker volume create "$cache" >/dev/null
# test: fill the cache, install from it, run the tests against the database
database test-only-password
docker run --rm --network container:$tag-db -v "$cache:/build" -v "$work/app:/application" -w /application \
  "${pip_env[@]}" -e TODO_DB_HOST=127.0.0.1 -e TODO_DB_PASSWORD=test-only-password -e TODO_DB_NAME=todo \
  "$image" todobackend-test >/dev/null
docker rm -f $tag-db >/dev/null
# build: wheels from the same cache, no network
mkdir -p "$out"
docker run --rm --network none -v "$cache:/build" -v "$work/app:/application" -v "$out:/wheelhouse" -w /application \
  "${pip_env[@]}" "$image" pip wheel --no-index -f /build -w /wheelhouse . >/dev/null
# release: install from the wheelhouse alone and smoke-check against a database
database release-check-password
docker run --rm --network container:$tag-db -v "$out:/wheelhouse:ro" "${pip_env[@]}" \
  -e TODO_DB_HOST=127.0.0.1 -e TODO_DB_PASSWORD=release-check-password -e TODO_DB_NAME=todo dockyard/python \
  sh -ec 'python3 -m venv /opt/todobackend
          /opt/todobackend/bin/pip install --no-index -f /wheelhouse todobackend >/dev/null
          /opt/todobackend/bin/todobackend-smoke' >/dev/null
