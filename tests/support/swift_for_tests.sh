#!/usr/bin/env bash
# swift_for_tests.sh start|stop DIR: a throw-away OpenStack Swift (Debian's packages)
# with its S3 layer (s3api + tempauth) on 127.0.0.1, for the scale-out tests' blob
# store. One device, one replica, four servers (proxy, account, container, object),
# each on a free loopback port; everything lives in DIR. `start` writes
#   DIR/endpoint     http://127.0.0.1:PORT
#   DIR/credentials  aws_access_key_id=… / aws_secret_access_key=… (--s3_credentials_file)
# and returns once the proxy answers. Buckets are made by the tests themselves.
set -euo pipefail

verb=${1:?usage: swift_for_tests.sh start|stop DIR}
dir=${2:?usage: swift_for_tests.sh start|stop DIR}

stop() {
  if [ -d "$dir/run" ]; then
    for pidfile in "$dir"/run/*.pid; do
      [ -e "$pidfile" ] || continue
      kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for pidfile in "$dir"/run/*.pid; do
      [ -e "$pidfile" ] || continue
      for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    done
  fi
  rm -rf "$dir"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ "$verb" = stop ]; then
  stop
  echo "swift_for_tests stop $dir: ok"
  exit 0
fi
[ "$verb" = start ] || { echo "unknown verb $verb" >&2; exit 2; }

stop  # what an aborted run left
mkdir -p "$dir"/{etc,srv/d1,run,log}
proxy_port=$(free_port); account_port=$(free_port); container_port=$(free_port); object_port=$(free_port)
secret=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

cat >"$dir/etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = $(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
[storage-policy:0]
name = Policy-0
default = yes
EOF

for ring in account:$account_port container:$container_port object:$object_port; do
  name=${ring%%:*}
  port=${ring##*:}
  swift-ring-builder "$dir/etc/$name.builder" create 4 1 1 >/dev/null
  swift-ring-builder "$dir/etc/$name.builder" add "r1z1-127.0.0.1:$port/d1" 100 >/dev/null
  swift-ring-builder "$dir/etc/$name.builder" rebalance >/dev/null || true  # "no partitions reassigned" is fine
  cat >"$dir/etc/$name-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = swift
devices = $dir/srv
mount_check = false
swift_dir = $dir/etc
log_name = $name-server
log_level = WARNING
[pipeline:main]
pipeline = $name-server
[app:$name-server]
use = egg:swift#$name
EOF
done

cat >"$dir/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $proxy_port
workers = 0
user = swift
swift_dir = $dir/etc
log_name = proxy-server
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:cache]
use = egg:swift#memcache
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:tempauth]
use = egg:swift#tempauth
user_dockyard_ci = $secret .admin
EOF

chown -R swift:swift "$dir/srv" "$dir/log"
for server in account container object proxy; do
  "swift-$server-server" "$dir/etc/$server-server.conf" >"$dir/log/$server.log" 2>&1 &
  echo $! >"$dir/run/$server.pid"
done

for _ in $(seq 300); do
  if curl -fsS "http://127.0.0.1:$proxy_port/healthcheck" >/dev/null 2>&1; then
    echo "http://127.0.0.1:$proxy_port" >"$dir/endpoint"
    printf 'aws_access_key_id=dockyard:ci\naws_secret_access_key=%s\n' "$secret" >"$dir/credentials"
    echo "swift_for_tests start $dir: ok (proxy on $proxy_port)"
    exit 0
  fi
  sleep 0.1
done
echo "swift_for_tests start: the proxy did not answer; logs:" >&2
tail -n 20 "$dir"/log/*.log >&2
exit 1
