#!/usr/bin/env bash
# Configures and builds everything into build/ (or $DOCKYARD_BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${DOCKYARD_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
