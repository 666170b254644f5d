#!/usr/bin/env bash
# The main job: sets up a fresh Debian 12 machine as needed, builds Dockyard, starts
# a controller and an agent on this machine, runs the example wheel pipeline
# (examples/wheels) through them and shows the wheels that landed in target/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prepare.sh

bin=${DOCKYARD_BUILD_DIR:-build}
state=.dockyard
mkdir -p "$state"
rm -f "$state/controller.address"
"$bin/controller/dockyard-controller" --listen=127.0.0.1:0 --data_dir="$state/controller" \
  --address_file="$state/controller.address" >"$state/controller.log" 2>&1 &
controller=$!
agent=""
cleanup() {
  [ -n "$agent" ] && kill -TERM "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
  kill -TERM "$controller" 2>/dev/null && wait "$controller" 2>/dev/null
  true
}
trap cleanup EXIT
for _ in $(seq 1 100); do [ -s "$state/controller.address" ] && break; sleep 0.1; done
address=$(cat "$state/controller.address")
"$bin/agent/dockyard-agent" --controller="$address" --name="$(hostname)-agent" --labels=linux,python \
  --slots=2 --work_dir="$state/agent" >"$state/agent.log" 2>&1 &
agent=$!
echo "controller on $address (log: $state/controller.log), agent $(hostname)-agent (log: $state/agent.log)"

rm -rf target
"$bin/controller/dockyard" --controller="$address" run examples/wheels/pipeline.yml --artifacts-dir=target
echo
echo "target/:"
ls -l target/
