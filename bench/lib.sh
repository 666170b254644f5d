# Shared by the bench scripts: a secured controller and enrolled agents from the
# build, as deployed (TLS, tokens), all under the scratch dir $work. Source it after
# setting $bin and $work.

# Starts the controller; sets $controller (pid) and $address, exports the CA.
start_controller() {
  "$bin/controller/dockyard-controller" --listen=127.0.0.1:0 --data_dir="$work/controller" \
    --address_file="$work/address" --log_level=warn "$@" 2>"$work/controller.log" &
  controller=$!
  for _ in $(seq 1 100); do [ -s "$work/address" ] && break; sleep 0.1; done
  address=$(cat "$work/address")
  # The CLI reads the CA and the admin token from files.
  export DOCKYARD_CA_FILE="$work/controller/tls/ca.crt"
}

dy() { "$bin/cli/dockyard" --controller="$address" --token_file="$work/controller/admin.token" "$@"; }

# Enrols and starts agent NAME with LABELS (one slot, work dir $work/NAME, any further
# arguments as more agent flags); sets $last_agent to its pid.
start_agent() {
  dy agents enrol >"$work/$1.token" 2>/dev/null
  "$bin/agent/dockyard-agent" --controller="$address" --name="$1" --labels="$2" --slots=1 \
    --work_dir="$work/$1" --enrol_token_file="$work/$1.token" --ca_file="$DOCKYARD_CA_FILE" \
    --log_level=${DOCKYARD_BENCH_LOG_LEVEL:-warn} "${@:3}" 2>"$work/$1.log" &
  last_agent=$!
}

# Waits until N agents are connected.
wait_for_agents() {
  for _ in $(seq 1 100); do [ "$(dy agents | grep -c ' connected ')" = "$1" ] && return; sleep 0.1; done
}

# --scaleout: a throw-away PostgreSQL and Swift (S3) under $work, as the scaleout tests
# use, a database and a bucket for the controller; sets scaleout_flags.
start_scaleout_stores() {
  chmod 755 "$work"  # the servers run as nobody and swift
  "$bin/tests/postgres_for_tests" start "$work/postgres" >/dev/null
  tests/support/swift_for_tests.sh start "$work/swift" >/dev/null
  scaleout_database main
  "$bin/bench/make_bucket" "$(cat "$work/swift/endpoint")" "$work/swift/credentials" bench
}

# A fresh database NAME on the --scaleout server; sets scaleout_flags for a controller.
scaleout_database() {
  local url port
  url=$(cat "$work/postgres/admin_url")
  port=${url##*:}; port=${port%%/*}
  PGPASSWORD=$(cat "$work/postgres/password") psql -q -h 127.0.0.1 -p "$port" -U dockyard postgres \
    -c "CREATE DATABASE bench_$1" >/dev/null
  scaleout_flags=(--state="${url%/*}/bench_$1" --state_password_file="$work/postgres/password"
    --blobs="s3://bench/$1" --s3_endpoint="$(cat "$work/swift/endpoint")"
    --s3_credentials_file="$work/swift/credentials")
}
