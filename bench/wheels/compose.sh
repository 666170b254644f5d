#!/usr/bin/env bash
# Runs bench/wheels/docker-compose.yml as its users do: build, test, builder, release,
# then down. cold: the dev image and the cache volume are removed first; warm: kept.
#   bench/wheels/compose.sh cold|warm SRC OUT
set -euo pipefail
mode=$1
work=$(mktemp -d /tmp/dy-compose-XXXXXX)
cp -a "$2" "$work/app"
export APP="$work/app" OUT=$3
compose() { docker-compose -p bench-compose -f "$(dirname "$0")/docker-compose.yml" "$@"; }
trap 'compose down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
if [ "$mode" = cold ]; then
  compose down -v >/dev/null 2>&1 || true
  docker rmi -f bench-compose-dev >/dev/null 2>&1 || true
fi
mkdir -p "$OUT"
compose build -q test
compose run --rm test
compose run --rm builder
compose run --rm release
