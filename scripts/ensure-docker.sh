#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock. If none does, starts
# dockerd with no default bridge network (stages run with network "none"; Dockyard
# never creates networks) and no iptables changes.
set -euo pipefail

socket=/var/run/docker.sock
answers() { curl -sf --unix-socket "$socket" http://docker/_ping >/dev/null 2>&1; }

if answers; then
  echo "ensure-docker: engine answers on $socket"
  exit 0
fi
command -v dockerd >/dev/null || { echo "ensure-docker: dockerd missing; run scripts/install-deps.sh" >&2; exit 1; }
log=/var/log/dockyard-dockerd.log
echo "ensure-docker: starting dockerd (log: $log)"
# setsid: the engine outlives this script and the CI step that started it.
setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false >"$log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  if answers; then echo "ensure-docker: engine is up"; exit 0; fi
  sleep 0.5
done
echo "ensure-docker: dockerd did not answer within 30 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
