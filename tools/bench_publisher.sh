#!/bin/bash
# Runs the publisher benchmark (tests/bench/bench_publisher.py) on private
# services it starts and stops.  Not a test: prints throughput against a raw
# publishing loop on the same server, and close()-to-notification latency.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd -P)
dir=${FILEREPO_BENCH_SERVICES:-/tmp/filerepo-bench-pub-services}
"$src/tools/deps.sh"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$src/build" -j"$(nproc)" >/dev/null
"$src/tools/services.sh" start "$dir" >/dev/null
trap '"$src/tools/services.sh" stop "$dir" >/dev/null' EXIT
FILEREPO_SERVICES_DIR=$dir FILEREPO_SOURCE_DIR=$src FILEREPOD=$src/build/filerepod \
FILEREPO=$src/build/filerepo PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 "$src/tests/bench/bench_publisher.py"
