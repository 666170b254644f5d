#!/usr/bin/env bash
# Moving a cache between build hosts: what a snapshot and a restore cost, against
# doing the same by hand with `docker cp`, measured in one script on this machine.
#   1. snapshot: a stage writing MB megabytes in FILES files into a cache, against the
#      same stage writing them outside any cache (the difference is the snapshot:
#      read out of the container, hashed, stored, sent to the controller);
#      baseline: `docker cp` of the directory out of a container (a tar on disk).
#   2. cold host: a second agent with an empty content store runs the next stage:
#      every part is fetched, checked and restored into a fresh volume;
#      baseline: `docker cp` of that tar into a fresh container's volume.
#   3. a host missing one file: the next run changes one file; the second agent
#      fetches only that one.
# "Hosts" are two agents with their own work dirs (content stores) on this engine.
# Usage: bench/cache_snapshots.sh [mb=300] [files=3000]   (needs scripts/prepare.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-300}
files=${2:-3000}
bin=${DOCKYARD_BUILD_DIR:-build}
work=$(mktemp -d /tmp/dy-cache-bench-XXXXXX)
a="cache-bench-a-$$"
b="cache-bench-b-$$"
cleanup() {
  for pid in ${agent_a:-} ${agent_b:-} ${controller:-}; do kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  for agent in "$a" "$b"; do
    docker ps -aq --filter "label=dockyard.agent=$agent" | xargs -r docker rm -f >/dev/null
    docker volume ls -q --filter "label=dockyard.agent=$agent" | xargs -r docker volume rm -f >/dev/null
  done
  docker rm -f "bench-out-$$" "bench-in-$$" >/dev/null 2>&1 || true
  docker volume rm -f "bench-out-$$" "bench-in-$$" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

. bench/lib.sh
start_controller
start_agent "$a" a; agent_a=$last_agent
start_agent "$b" b; agent_b=$last_agent
wait_for_agents 2

now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.2f", e - s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
per_file=$((mb * 1000000 / files))
# Random content, FILES files of equal size in 30 directories; $1 is where.
make_files="i=0; while [ \$i -lt $files ]; do d=\$1/d\$((i % 30)); mkdir -p \$d; head -c $per_file /dev/urandom > \$d/f\$i; i=\$((i + 1)); done"

pipeline() {  # name where(cache|tmp) next(yes|no) change-one(yes|no)
  {
    printf 'name: %s\ncaches:\n  deps: {key: bench-%s}\nstages:\n' "$1" "$$"
    printf '  - name: make\n    image: dockyard/busybox\n    agent: {labels: [a]}\n'
    if [ "$2" = cache ]; then printf '    caches: {deps: /c}\n'; fi
    if [ "$4" = yes ]; then
      printf '    run: echo changed-%s > /c/d0/f0\n' "$RANDOM"
    else
      printf '    run: |\n      set -- %s\n      %s\n' "$([ "$2" = cache ] && echo /c || echo /tmp/c)" "$make_files"
    fi
    if [ "$3" = yes ]; then
      printf '  - name: use\n    needs: [make]\n    image: dockyard/busybox\n    agent: {labels: [b]}\n'
      printf '    caches: {deps: /c}\n    run: du -sm /c\n'
    fi
  } >"$work/$1.yml"
  echo "$work/$1.yml"
}

echo "cache of $mb MB in $files files"
# 1. Snapshot.
t=$(now); dy run "$(pipeline plain tmp no no)" >/dev/null; plain_s=$(since "$t")
t=$(now); dy run "$(pipeline snap cache no no)" >"$work/snap.out"; snap_s=$(since "$t")
snapshot_s=$(awk -v a="$snap_s" -v b="$plain_s" 'BEGIN { printf "%.2f", a - b }')
docker volume create "bench-out-$$" >/dev/null
docker run --name "bench-out-$$" -v "bench-out-$$:/c" --network none dockyard/busybox sh -c "set -- /c; $make_files"
t=$(now); docker cp "bench-out-$$:/c" - >"$work/c.tar"; cp_out_s=$(since "$t")
printf 'snapshot            dockyard %6.2fs (stage %.2fs - same stage without a cache %.2fs)   docker cp out %6.2fs   ratio %s\n' \
  "$snapshot_s" "$snap_s" "$plain_s" "$cp_out_s" "$(ratio "$snapshot_s" "$cp_out_s")"
grep -o 'snapshot [0-9a-f]* ([^)]*)' "$work/snap.out" | head -1 | sed 's/^/                    /'

# 2. Cold host: b has never seen any of it.
t=$(now); dy run "$(pipeline cold cache yes no)" >"$work/cold.out"; cold_s=$(since "$t")
restore_s=$(awk -v a="$cold_s" -v b="$snap_s" 'BEGIN { printf "%.2f", a - b }')
docker volume create "bench-in-$$" >/dev/null
docker create --name "bench-in-$$" -v "bench-in-$$:/c" --network none dockyard/busybox true >/dev/null
t=$(now); docker cp - "bench-in-$$:/" <"$work/c.tar"; cp_in_s=$(since "$t")
printf 'restore, cold host  dockyard %6.2fs (run %.2fs - the run without it %.2fs)        docker cp in  %6.2fs   ratio %s\n' \
  "$restore_s" "$cold_s" "$snap_s" "$cp_in_s" "$(ratio "$restore_s" "$cp_in_s")"
grep -o 'use  | \[dockyard\] cache deps at .*' "$work/cold.out" | sed 's/.*; /                    /'

# 3. One file changed: b holds all but that one.
t=$(now); dy run "$(pipeline one cache yes yes)" >"$work/one.out"; one_s=$(since "$t")
printf 'restore, 1 missing  dockyard run %6.2fs in all\n' "$one_s"
grep -o 'use  | \[dockyard\] cache deps at .*' "$work/one.out" | sed 's/.*; /                    /'
