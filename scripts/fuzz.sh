#!/usr/bin/env bash
# Fuzzes the code that reads untrusted bytes (tests/fuzz/fuzz_targets.h) with
# libFuzzer and AddressSanitizer: builds build-fuzz/ with clang, then runs each
# target for SECONDS (default 60), starting from the inputs kept in
# tests/fuzz/regressions/<target>/. A crash is saved under build-fuzz/crashes/ and
# fails the script: fix it, then keep its input in the regressions folder, which the
# unit tests replay on every run. Not part of scripts/test.sh (it takes minutes).
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(pipeline_parser docker_log_frames tar_extract state_records)

scripts/install-deps.sh
if ! command -v clang++ >/dev/null || [ ! -d /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
fi
# Our libraries get coverage instrumentation and ASan too, so the fuzzer sees into them.
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DDOCKYARD_FUZZ=ON \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address -Wno-error" >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target $(printf '%s_fuzzer ' "${targets[@]}")

failed=0
for target in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$target
  crashes=build-fuzz/crashes/$target
  mkdir -p "$corpus" "$crashes"
  echo "fuzz: $target for ${seconds}s"
  if ! build-fuzz/tests/fuzz/${target}_fuzzer -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$crashes/" "$corpus" "tests/fuzz/regressions/$target" >"build-fuzz/$target.log" 2>&1; then
    echo "fuzz: $target FOUND A CRASH (see build-fuzz/$target.log and $crashes/)" >&2
    tail -n 30 "build-fuzz/$target.log" >&2
    failed=1
  else
    grep -E "stat::number_of_executed_units|cov:" "build-fuzz/$target.log" | tail -n 2
  fi
done
exit $failed
