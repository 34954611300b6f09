#!/bin/bash
# Builds filerepo and runs its whole test suite, as a fresh Debian 12
# machine (as root) or CI would:
#   1. install the dependencies (tools/deps.sh);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build, its unit
#      tests and its integration tests (the daemon itself runs sanitized);
#   3. a clang build of the libFuzzer targets, each run over a fixed number
#      of generated inputs;
#   4. the normal build and the full suite: unit tests, the same under
#      valgrind, and the integration tests against private PostgreSQL and
#      ejabberd instances that the suite starts and stops itself.
# Usage: tools/test.sh [extra ctest arguments]
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd -P)
jobs=$(nproc)
"$src/tools/deps.sh"

build() {  # build DIR [cmake options...]
    local dir=$1
    shift
    cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
}

started=$(date +%s)
echo "== sanitizer build (ASan + UBSan)"
build "$src/build-sanitize" -DFILEREPO_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$src/build-sanitize" --output-on-failure -j"$jobs" "$@"

echo "== fuzz targets (libFuzzer, clang)"
build "$src/build-fuzz" -DCMAKE_C_COMPILER=clang -DFILEREPO_FUZZ=ON
ctest --test-dir "$src/build-fuzz" --output-on-failure -j"$jobs"

echo "== build and full suite"
build "$src/build"
ctest --test-dir "$src/build" --output-on-failure -j"$jobs" "$@"
echo "tools/test.sh: everything passed in $(( $(date +%s) - started )) s"
