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

# Secured like any deployment: the CLI trusts the controller's CA and presents the
# first admin token the controller wrote to its data dir (read from files, never
# put on a command line); the agent enrols once with a one-time token.
export DOCKYARD_CONTROLLER="$address"
export DOCKYARD_CA_FILE="$state/controller/tls/ca.crt"
dy() { "$bin/cli/dockyard" --token_file="$state/controller/admin.token" "$@"; }
agent_name="$(hostname)-agent"
enrol=()
if [ ! -s "$state/agent/identity/agent.crt" ]; then
  (umask 077 && dy agents enrol --uses=1 --ttl=10m >"$state/enrol.token" 2>/dev/null)
  enrol=(--enrol_token_file="$state/enrol.token" --ca_file="$DOCKYARD_CA_FILE")
fi
"$bin/agent/dockyard-agent" --controller="$address" --name="$agent_name" --labels=linux,python \
  --slots=2 --work_dir="$state/agent" "${enrol[@]}" >"$state/agent.log" 2>&1 &
agent=$!
for _ in $(seq 1 100); do
  dy agents 2>/dev/null | grep -q "^$agent_name .* connected " && break
  if ! kill -0 "$agent" 2>/dev/null; then
    echo "the agent did not start; its log ($state/agent.log):" >&2
    cat "$state/agent.log" >&2
    exit 1
  fi
  sleep 0.1
done
rm -f "$state/enrol.token"  # used up now
echo "controller on $address over TLS (log: $state/controller.log), agent $agent_name (log: $state/agent.log)"
echo "CA: $DOCKYARD_CA_FILE   admin token: $state/controller/admin.token"

rm -rf target
dy run examples/wheels/pipeline.yml --artifacts-dir=target
echo
echo "target/:"
ls -l target/
