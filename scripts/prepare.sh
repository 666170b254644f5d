#!/usr/bin/env bash
# Everything both README commands need first, each step idempotent: Debian packages,
# a Docker engine that answers, the local images, and a build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/ensure-docker.sh
scripts/build-images.sh
scripts/build.sh
