#!/bin/bash
# Runs filerepo's benchmarks (tests/bench) against the peers measured in the
# same run, on private services it starts and stops.  Not a test: prints
# medians and ratios.  Sizes: see tests/bench/bench_indexer.py.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd -P)
dir=${FILEREPO_BENCH_SERVICES:-/tmp/filerepo-bench-services}
"$src/tools/deps.sh"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$src/build" -j"$(nproc)" >/dev/null
"$src/tools/services.sh" start "$dir" >/dev/null
trap '"$src/tools/services.sh" stop "$dir" >/dev/null' EXIT
FILEREPO_SERVICES_DIR=$dir FILEREPO_SOURCE_DIR=$src FILEREPOD=$src/build/filerepod \
FILEREPO=$src/build/filerepo PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 "$src/tests/bench/bench_indexer.py"
FILEREPO_SERVICES_DIR=$dir FILEREPO_SOURCE_DIR=$src FILEREPOD=$src/build/filerepod FILEREPO=$src/build/filerepo PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 "$src/tests/bench/bench_query.py"
