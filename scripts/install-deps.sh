#!/usr/bin/env bash
# Installs the Debian 12 packages Dockyard builds and runs with (idempotent).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler  # wire contract
  libabsl-dev           # Status/StatusOr, flags, time, synchronization
  libspdlog-dev         # logging
  libgtest-dev libgmock-dev
  libcurl4-openssl-dev  # Docker Engine API over its unix socket
  nlohmann-json3-dev    # Docker Engine API JSON
  libyaml-cpp-dev       # pipeline files
  libsqlite3-dev        # controller state
  libarchive-dev        # tar streams (sources, artifacts)
  libssl-dev            # sha256, the CA and certificates, TLS
  python3 python3-venv  # e2e wheel checks; the example Jenkinsfile's release stage (venv)
  docker.io             # the engine agents drive
  debootstrap busybox-static  # local images without a registry
  libxml2-utils         # xmllint: JUnit reports validated against their schema in tests
  groovy default-jre-headless  # the Jenkins shared library's tests (ctest label jenkins)
  tmux                  # the CLI's terminal view, tested in a real terminal
  docker-registry       # a real registry on loopback: image pull tests
  apache2-utils         # htpasswd: that registry's bcrypt password file
  docker-compose        # bench/run: the wheel workflow by hand with a compose file (baseline)
  postgresql libpqxx-dev  # --state=postgresql://: state for more than one controller (scaleout tests)
  libxml2-dev           # --blobs=s3://: S3's XML answers
  swift swift-proxy swift-account swift-container swift-object  # a real S3 (Swift's s3api) for scaleout tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
