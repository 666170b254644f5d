#!/usr/bin/env bash
# Dockyard against plain Docker on this machine, as ratios measured in one script:
#   1. a trivial stage (`true`) through controller + agent + CLI vs `docker run --rm`
#   2. a large artifact out of a container into target/ vs `docker cp` of the same file
# Usage: bench/stage_overhead.sh [runs=10] [artifact_mb=200]   (needs scripts/prepare.sh first)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
mb=${2:-200}
bin=${DOCKYARD_BUILD_DIR:-build}
work=$(mktemp -d /tmp/dy-bench-XXXXXX)
agent_name="bench-$$"
cleanup() {
  [ -n "${agent:-}" ] && kill -TERM "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
  [ -n "${controller:-}" ] && kill -TERM "$controller" 2>/dev/null && wait "$controller" 2>/dev/null
  docker ps -aq --filter "label=dockyard.agent=$agent_name" | xargs -r docker rm -f >/dev/null
  docker rm -f "bench-cp-$$" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

. bench/lib.sh
start_controller
start_agent "$agent_name" linux; agent=$last_agent
wait_for_agents 1

now() { date +%s.%N; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# 1. Trivial stage.
printf 'name: trivial\nstages:\n  - {name: t, image: dockyard/busybox, run: "true"}\n' >"$work/trivial.yml"
dy run "$work/trivial.yml" >/dev/null  # warm-up
start=$(now); for _ in $(seq 1 "$runs"); do docker run --rm --network none dockyard/busybox true; done; end=$(now)
docker_s=$(awk -v s="$start" -v e="$end" -v n="$runs" 'BEGIN { print (e - s) / n }')
start=$(now); for _ in $(seq 1 "$runs"); do dy run "$work/trivial.yml" >/dev/null; done; end=$(now)
dockyard_s=$(awk -v s="$start" -v e="$end" -v n="$runs" 'BEGIN { print (e - s) / n }')
printf 'trivial stage      docker run: %.3fs   dockyard run: %.3fs   ratio %s\n' "$docker_s" "$dockyard_s" \
  "$(ratio "$dockyard_s" "$docker_s")"

# 2. Artifact of $mb MB. Both sides first create the file in a container; only the
# transfer is compared: docker cp vs Dockyard's archive read + upload + verify + download.
docker create --name "bench-cp-$$" --network none dockyard/busybox \
  sh -c "mkdir -p /out && head -c $((mb * 1000000)) /dev/urandom > /out/big.bin" >/dev/null
docker start -a "bench-cp-$$"
start=$(now); docker cp "bench-cp-$$:/out/big.bin" "$work/cp.bin"; end=$(now)
cp_s=$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')
printf 'name: big\nstages:\n  - name: make\n    image: dockyard/busybox\n    run: mkdir -p /out && head -c %d /dev/urandom > /out/big.bin && echo made\n    artifacts: [/out/big.bin]\n' \
  $((mb * 1000000)) >"$work/big.yml"
# Time from the stage's "made" line to the file in target/: the artifact path alone.
dy run "$work/big.yml" --artifacts-dir="$work/target" | while IFS= read -r line; do
  case "$line" in *"| made"*) now >"$work/made_at" ;; esac
done
end=$(now)
dockyard_art_s=$(awk -v s="$(cat "$work/made_at")" -v e="$end" 'BEGIN { print e - s }')
printf 'artifact %d MB     docker cp: %.2fs   dockyard: %.2fs   ratio %s   (%.0f MB/s)\n' "$mb" "$cp_s" \
  "$dockyard_art_s" "$(ratio "$dockyard_art_s" "$cp_s")" "$(awk -v m="$mb" -v s="$dockyard_art_s" 'BEGIN { print m / s }')"
