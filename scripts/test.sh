#!/usr/bin/env bash
# The test command: sets up a fresh Debian 12 machine as needed (packages, Docker
# engine, local images), builds, and runs every test (unit, integration, e2e).
# Extra arguments go to ctest, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare.sh
build_dir=${DOCKYARD_BUILD_DIR:-build}
cd "$build_dir"
ctest --output-on-failure --timeout 900 "$@"
